"""The Pulumi program: read the typed stack config, build the enabled pipelines, export what users need."""

from __future__ import annotations

from components.stack import build_stack

build_stack()
