"""Suite-wide ordering: checks that consume what the handler tests record run after them."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "after_handler_tests: runs after every handler test in the session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("after_handler_tests") is not None)
