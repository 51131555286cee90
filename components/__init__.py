"""Pulumi components: secure defaults, reusable blocks and the pipelines composed from them."""
