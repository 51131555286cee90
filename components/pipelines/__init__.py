"""The pipelines, each composed from the blocks."""
