"""Project maintenance tools (generated documentation)."""
