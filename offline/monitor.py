"""A resource monitor that registers resources the way the engine does, and records them as the engine holds them.

It extends Pulumi's own `MockMonitor` (so the program runs under the SDK's public mocking path), but registers a
custom resource in the engine's order (`docs/offline-fidelity.md`, "Registration"): the provider's `Check` first,
whose output is what the resource's inputs are from then on (and what `Analyze` receives), then `Create`, whose
state goes back to the program and is what `AnalyzeStack` receives. Per resource it records type, name, parent,
checked inputs, state, id, dependencies and property dependencies; those records drive the component tests, the
policy analysis and the stack export.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.settings import get_project, get_stack

from offline.model import UNKNOWN, ResourceRecord
from offline.provider import AwsProviderEmulator
from offline.values import from_wire


class RecordingMonitor(MockMonitor):
    """Records registrations in the order the program makes them."""

    def __init__(self, provider: AwsProviderEmulator) -> None:
        super().__init__(provider)
        self.provider = provider
        self.records: dict[str, ResourceRecord] = {}

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """URNs as the engine builds them: the parent's whole type chain, the root stack left out."""
        if parent:
            parent_type = parent.split("::")[2]
            if parent_type != "pulumi:pulumi:Stack":
                type_ = f"{parent_type}${type_}"
        return "urn:pulumi:" + "::".join([get_stack(), get_project(), type_, name])

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            self.records[urn] = ResourceRecord(urn=urn, type=request.type, name=request.name, custom=False)
            return resource_pb2.RegisterResourceResponse(urn=urn)
        given = from_wire(request.object)
        custom = bool(request.custom)
        if custom:
            inputs = self.provider.check(request.type, request.name, urn, given)
            resource_id, state = self.provider.create(request.type, request.name, inputs)
        else:  # a component: its "inputs" are what it passed to its own constructor, and it has no provider
            inputs, resource_id, state = _drop_nulls(given), "", _drop_nulls(given)
        self.resources[urn] = MockMonitor.ResourceRegistration(urn, resource_id, state)
        self.records[urn] = ResourceRecord(
            urn=urn,
            type=request.type,
            name=request.name,
            custom=custom,
            inputs=inputs,
            outputs=_drop_nulls(state) if custom else {},
            id=resource_id or (UNKNOWN if custom else None),
            parent=request.parent or None,
            dependencies=list(dict.fromkeys(request.dependencies)),
            property_dependencies={key: list(deps.urns) for key, deps in request.propertyDependencies.items()
                                   if deps.urns},
            protect=bool(request.protect),
            provider=request.provider or None,
        )
        response_state = struct_pb2.Struct()
        response_state.update(state)  # plain JSON: unknowns are the sentinel, assets and archives in wire form
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=response_state)


def _drop_nulls(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if v is not None}
