"""What the installed `pulumi_aws` SDK says about a resource type's properties, read from the SDK itself.

The SDK is generated from the provider's schema by the bridge's `tfgen`, which marks an *output* property as always
present (a getter typed `Output[T]`, not `Output[Optional[T]]`) exactly when the Terraform attribute is Required,
Computed, or has a Pulumi-side default; an *input* is required (a parameter of `<Resource>Args.__init__` without a
default) when the attribute is Required and neither Computed nor defaulted. So

    computed = always-present outputs - required inputs

is the set of properties the provider fills in when the program leaves them unset: the ones a preview's planned
state shows as unknown (`docs/offline-fidelity.md`, "Planned state"). Nothing here is a hand-written list, so a
provider upgrade updates it.

>>> schema_of("aws:sqs/queue:Queue").computed  # doctest: +SKIP
frozenset({'arn', 'policy', 'redrivePolicy', 'sqsManagedSseEnabled', 'tagsAll', 'url', ...})
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pulumi

_RESOURCE_MODULES = re.compile(r'resource_modules="""(.*?)"""', re.DOTALL)


@dataclass(frozen=True)
class OutputProperty:
    """One output property: its Pulumi name, whether the provider always reports it, and its value's shape."""

    name: str
    always_present: bool
    kind: str  # "string" | "integer" | "number" | "boolean" | "array" | "object"


@dataclass(frozen=True)
class ResourceSchema:
    token: str
    inputs: frozenset[str]
    required_inputs: frozenset[str]
    outputs: Mapping[str, OutputProperty]

    @property
    def computed(self) -> frozenset[str]:
        """Properties the provider computes when the program leaves them unset."""
        return frozenset(name for name, prop in self.outputs.items()
                         if prop.always_present and name not in self.required_inputs)

    def kind_of(self, name: str) -> str:
        prop = self.outputs.get(name)
        return prop.kind if prop is not None else "string"


@cache
def _classes_by_token() -> dict[str, tuple[str, str]]:
    """Type token -> (Python module, class name), from the registry the SDK declares in its `__init__.py`."""
    import pulumi_aws

    source = Path(pulumi_aws.__file__).read_text(encoding="utf-8")
    match = _RESOURCE_MODULES.search(source)
    if match is None:  # pragma: no cover - a layout change of the generated SDK
        raise RuntimeError(f"{pulumi_aws.__file__} declares no resource_modules registry")
    found: dict[str, tuple[str, str]] = {}
    for entry in json.loads(match.group(1)):
        for token, class_name in entry["classes"].items():
            found[token] = (entry["fqn"], class_name)
    return found


@cache
def schema_of(token: str) -> ResourceSchema | None:
    """The schema of an `aws:` resource type, or None for a type the installed SDK does not declare."""
    located = _classes_by_token().get(token)
    if located is None:
        return None
    resource_class = getattr(importlib.import_module(located[0]), located[1])
    args_class = _args_class(resource_class)
    inputs, required = _inputs(args_class) if args_class is not None else (frozenset(), frozenset())
    return ResourceSchema(token=token, inputs=inputs, required_inputs=required, outputs=_outputs(resource_class))


def _args_class(resource_class: type) -> type | None:
    """The resource's Args class, as its own module exports it: `<Name>Args`, or `<Name>InitArgs` where a nested
    input type already has that name (pulumi_aws.s3.BucketServerSideEncryptionConfigurationArgs is the Bucket's
    inline block; the resource's own is BucketServerSideEncryptionConfigurationInitArgs)."""
    module = importlib.import_module(resource_class.__module__)
    exported = [name for name in getattr(module, "__all__", ()) if name.endswith("Args")]
    return getattr(module, exported[0]) if len(exported) == 1 else None


def _getters(cls: type) -> dict[str, tuple[str, Any]]:
    """Python name -> (Pulumi name, annotated type) for each `@pulumi.getter` property of a generated class."""
    found = {}
    for python_name, member in vars(cls).items():
        if isinstance(member, property) and member.fget is not None:
            pulumi_name = getattr(member.fget, "_pulumi_name", None)
            if pulumi_name is not None:
                found[python_name] = (pulumi_name, member.fget.__annotations__.get("return"))
    return found


def _inputs(args_class: type) -> tuple[frozenset[str], frozenset[str]]:
    getters = _getters(args_class)
    names = frozenset(pulumi_name for pulumi_name, _ in getters.values())
    parameters = inspect.signature(args_class.__init__).parameters  # type: ignore[misc]
    required = frozenset(getters[p.name][0] for p in parameters.values()
                         if p.name in getters and p.default is inspect.Parameter.empty)
    return names, required


def _outputs(resource_class: type) -> dict[str, OutputProperty]:
    result = {}
    for pulumi_name, annotation in _getters(resource_class).values():
        inner = typing.get_args(annotation)[0] if typing.get_origin(annotation) is pulumi.Output else annotation
        optional = typing.get_origin(inner) is typing.Union and type(None) in typing.get_args(inner)
        if optional:
            inner = next(a for a in typing.get_args(inner) if a is not type(None))
        result[pulumi_name] = OutputProperty(pulumi_name, not optional, _kind(inner))
    return result


def _kind(annotation: Any) -> str:
    origin = typing.get_origin(annotation) or annotation
    if origin is str:
        return "string"
    if origin is bool:
        return "boolean"
    if origin is int:
        return "integer"
    if origin is float:
        return "number"
    if isinstance(origin, type) and issubclass(origin, Mapping):
        return "object"
    if isinstance(origin, type) and issubclass(origin, Sequence):
        return "array"
    return "object"  # a generated output type ('outputs.X', a forward reference) is an object
