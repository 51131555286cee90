"""Suite-wide ordering: checks that consume what the handler tests record run after them."""

from __future__ import annotations

import os
import sys

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # A pack without a virtualenv option runs on $PULUMI_PYTHON_CMD, as under the Pulumi CLI: the fixture packs run
    # on this interpreter. The project's pack names its own virtualenv (policies/venv, which `make test` builds).
    os.environ.setdefault("PULUMI_PYTHON_CMD", sys.executable)
    config.addinivalue_line("markers", "after_handler_tests: runs after every handler test in the session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("after_handler_tests") is not None)
