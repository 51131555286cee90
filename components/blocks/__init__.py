"""Small reusable components that the pipelines compose."""
