"""One policy-pack process for the whole session, started as the Pulumi CLI starts it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from offline.analyzer import PolicyPackProcess
from tests.policies.builders import PROJECT, STACK


@pytest.fixture(scope="session")
def pack() -> Iterator[PolicyPackProcess]:
    with PolicyPackProcess(project=PROJECT, stack=STACK, mode="preview") as process:
        yield process
