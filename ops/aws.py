"""boto3 clients in the stack's region, one per service, replaceable for tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3


class Clients:
    def __init__(self, region: str, *, profile: str | None = None, overrides: Mapping[str, Any] | None = None) -> None:
        self._session = boto3.session.Session(region_name=region, profile_name=profile)
        self._clients: dict[str, Any] = dict(overrides or {})

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service)  # type: ignore[call-overload]
        return self._clients[service]
