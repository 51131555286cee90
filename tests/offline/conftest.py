"""Fixtures for the offline-preview tests: a fixture project with a known verdict per policy category, and its
policy pack, both independent of the project's own components and policies."""

from __future__ import annotations

import pytest
from fixture_paths import FIXTURE_PROJECT

from offline.synth import Synthesis, synthesize


@pytest.fixture(scope="session")
def violating_preview() -> Synthesis:
    return synthesize("violating", "preview", project_dir=FIXTURE_PROJECT)


@pytest.fixture(scope="session")
def violating_update() -> Synthesis:
    return synthesize("violating", "update", project_dir=FIXTURE_PROJECT)
