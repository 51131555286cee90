"""Where the fixture project and its policy pack live (shared by conftest.py and the tests)."""

from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURE_PROJECT = HERE / "fixture_project"
FIXTURE_PACK = HERE / "fixture_pack"
