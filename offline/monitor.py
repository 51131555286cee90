"""A resource monitor that records every registration the way the engine holds it.

It extends Pulumi's own `MockMonitor` (so the program runs under the SDK's public mocking path) and keeps, per
resource: type, name, parent, inputs as the provider sees them, outputs, id, dependencies and property
dependencies. Those records drive the component tests, the policy analysis and the stack export.
"""

from __future__ import annotations

from typing import Any

from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import get_project, get_stack

from offline.model import UNKNOWN, ResourceRecord
from offline.provider import AwsProviderEmulator, as_provider_inputs
from offline.values import plain


class RecordingMonitor(MockMonitor):
    """Records registrations in the order the program makes them."""

    def __init__(self, mocks: AwsProviderEmulator) -> None:
        super().__init__(mocks)
        self.records: dict[str, ResourceRecord] = {}

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """URNs as the engine builds them: the parent's whole type chain, the root stack left out."""
        if parent:
            parent_type = parent.split("::")[2]
            if parent_type != "pulumi:pulumi:Stack":
                type_ = f"{parent_type}${type_}"
        return "urn:pulumi:" + "::".join([get_stack(), get_project(), type_, name])

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            self.records[response.urn] = ResourceRecord(urn=response.urn, type=request.type, name=request.name,
                                                        custom=False)
            return response
        inputs = as_provider_inputs(request.type, plain(rpc.deserialize_properties(request.object,
                                                                                  keep_unknowns=True)))
        registration = self.resources[response.urn]
        outputs = plain(registration.state)
        self.records[response.urn] = ResourceRecord(
            urn=response.urn,
            type=request.type,
            name=request.name,
            custom=bool(request.custom),
            inputs=_drop_nulls(inputs),
            outputs=_drop_nulls(outputs) if request.custom else {},
            id=registration.id or (UNKNOWN if request.custom else None),
            parent=request.parent or None,
            dependencies=list(dict.fromkeys(request.dependencies)),
            property_dependencies={key: list(deps.urns) for key, deps in request.propertyDependencies.items()
                                   if deps.urns},
            protect=bool(request.protect),
            provider=request.provider or None,
        )
        return response


def _drop_nulls(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if v is not None}


