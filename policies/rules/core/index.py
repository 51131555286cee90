"""Indexes over the stack, built once per stack policy, so a rule relates resources without rescanning.

The engine records, for each input property of a resource, the resources its value came from
(`propertyDependencies`). A program that passes `queue.name.apply(...)` into a mapping's `eventSourceArn`
therefore tells us, without parsing any ARN, that the mapping reads that queue. `deps` follows such an edge
forward; `referrers` follows it backward (which mappings read this queue?).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from pulumi_policy import PolicyResource

T = TypeVar("T")


class StackIndex:
    def __init__(self, resources: Sequence[PolicyResource]) -> None:
        self.resources = resources
        self._by_type: dict[str, list[PolicyResource]] = defaultdict(list)
        # target URN -> [(property key, resource whose property depends on the target)]
        self._referrers: dict[str, list[tuple[str, PolicyResource]]] = defaultdict(list)
        self._derived: dict[str, Any] = {}
        for resource in resources:
            self._by_type[resource.resource_type].append(resource)
            for key, targets in resource.property_dependencies.items():
                for target in targets:
                    self._referrers[target.urn].append((key, resource))

    def derived(self, key: str, build: Callable[[StackIndex], T]) -> T:
        """A relation several checks share (e.g. every SQS mapping with its queue), computed once per index."""
        if key not in self._derived:
            self._derived[key] = build(self)
        result: T = self._derived[key]
        return result

    def of_type(self, *types: str) -> list[PolicyResource]:
        return [resource for t in types for resource in self._by_type.get(t, ())]

    @staticmethod
    def deps(resource: PolicyResource, key: str, *types: str) -> list[PolicyResource]:
        """Resources (of `types`, if given) that `resource`'s property `key` was built from."""
        return _unique(d for d in resource.property_dependencies.get(key, ()) if not types or d.resource_type in types)

    def referrers(self, target: PolicyResource, *types: str, key: str | None = None) -> list[PolicyResource]:
        """Resources (of `types`) with a property (`key`, if given) built from `target`."""
        return _unique(source for k, source in self._referrers.get(target.urn, ())
                       if (key is None or k == key) and (not types or source.resource_type in types))


def _unique(resources: Iterable[PolicyResource]) -> list[PolicyResource]:
    seen: dict[str, PolicyResource] = {}
    for resource in resources:
        seen.setdefault(resource.urn, resource)
    return list(seen.values())
