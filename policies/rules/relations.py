"""Relations several rules follow, derived from property dependencies once per stack policy."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from pulumi_policy import PolicyResource

from .core import types
from .core.index import StackIndex
from .core.rule import describe
from .core.values import unless_computed


@dataclass(frozen=True)
class SqsMapping:
    """An event source mapping that feeds `function` from `queue`."""

    mapping: PolicyResource
    queue: PolicyResource
    function: PolicyResource | None

    def feeds(self) -> str:
        consumer = describe(self.function) if self.function else "a function outside this stack"
        return f"consumed by {consumer} through {describe(self.mapping)}"


def _sqs_mappings(index: StackIndex) -> list[SqsMapping]:
    result = []
    for mapping in index.of_type(types.EVENT_SOURCE_MAPPING):
        functions = index.deps(mapping, "functionName", types.FUNCTION)
        for queue in index.deps(mapping, "eventSourceArn", types.QUEUE):
            result.append(SqsMapping(mapping, queue, functions[0] if functions else None))
    return result


def sqs_mappings(index: StackIndex) -> list[SqsMapping]:
    """Every mapping whose eventSourceArn was built from a queue of this stack (eventSourceArn -> Queue,
    functionName -> Function)."""
    return index.derived("sqs_mappings", _sqs_mappings)


def _separate_redrives(index: StackIndex) -> dict[str, PolicyResource]:
    by_queue: dict[str, PolicyResource] = {}
    for policy in index.of_type(types.REDRIVE_POLICY):
        for queue in index.deps(policy, "queueUrl", types.QUEUE):
            by_queue.setdefault(queue.urn, policy)
    return by_queue


def _redrive_holder(index: StackIndex, queue: PolicyResource) -> PolicyResource:
    """Where a queue's redrive policy is set: a separate RedrivePolicy resource if the stack uses one (then the
    queue's own `redrivePolicy` is computed from it, unknown at preview), else the queue itself."""
    return index.derived("separate_redrives", _separate_redrives).get(queue.urn, queue)


def redrive_policy(index: StackIndex, queue: PolicyResource) -> object:
    """The queue's redrive policy document, read from whichever resource sets it (RedrivePolicy.queueUrl -> Queue).
    The queue's own `redrivePolicy` is computed when left unset (unknown at preview): `unless_computed` tells that
    from a program's own unknown value, which gives no verdict."""
    holder = _redrive_holder(index, queue)
    return unless_computed(holder, "redrivePolicy") if holder is queue else holder.props.get("redrivePolicy")


def _redrives(index: StackIndex) -> dict[str, list[PolicyResource]]:
    sources: dict[str, list[PolicyResource]] = defaultdict(list)
    for queue in index.of_type(types.QUEUE):
        for dlq in index.deps(_redrive_holder(index, queue), "redrivePolicy", types.QUEUE):
            sources[dlq.urn].append(queue)
    return sources


def redrive_sources(index: StackIndex) -> dict[str, list[PolicyResource]]:
    """DLQ URN -> the queues whose redrive policy names it (Queue.redrivePolicy -> Queue, or
    RedrivePolicy.redrivePolicy -> Queue with RedrivePolicy.queueUrl -> the source)."""
    return index.derived("redrive_sources", _redrives)


def dead_letter_queues(index: StackIndex) -> dict[str, tuple[PolicyResource, str]]:
    """Every queue used as a dead-letter queue -> (the queue, what dead-letters into it): queues' redrive
    policies and EventBridge targets' deadLetterConfig."""
    by_urn = {q.urn: q for q in index.of_type(types.QUEUE)}
    found: dict[str, tuple[PolicyResource, str]] = {}
    for urn, sources in redrive_sources(index).items():
        found[urn] = (by_urn[urn], ", ".join(describe(s) for s in sources))
    for target in index.of_type(types.EVENT_TARGET):
        for dlq in index.deps(target, "deadLetterConfig", types.QUEUE):
            found.setdefault(dlq.urn, (dlq, describe(target)))
    return found


def delivered_queues(index: StackIndex) -> dict[str, tuple[PolicyResource, list[str]]]:
    """Queue URN -> (queue, how it is fed) for every queue a Lambda consumes or S3 or EventBridge delivers to
    (EventSourceMapping.eventSourceArn, BucketNotification.queues, EventTarget.arn)."""
    fed: dict[str, tuple[PolicyResource, list[str]]] = {}

    def add(queue: PolicyResource, how: str) -> None:
        fed.setdefault(queue.urn, (queue, []))[1].append(how)

    for link in sqs_mappings(index):
        add(link.queue, link.feeds())
    for notification in index.of_type(types.BUCKET_NOTIFICATION):
        for queue in index.deps(notification, "queues", types.QUEUE):
            add(queue, f"delivered to by {describe(notification)}")
    for target in index.of_type(types.EVENT_TARGET):
        for queue in index.deps(target, "arn", types.QUEUE):
            add(queue, f"delivered to by {describe(target)}")
    return fed


def _by_queue(index: StackIndex) -> dict[str, list[SqsMapping]]:
    grouped: dict[str, list[SqsMapping]] = defaultdict(list)
    for link in sqs_mappings(index):
        grouped[link.queue.urn].append(link)
    return grouped


def mappings_of(index: StackIndex, queue: PolicyResource) -> list[SqsMapping]:
    """The mappings that consume `queue`."""
    return index.derived("mappings_by_queue", _by_queue).get(queue.urn, [])


def identity_documents(index: StackIndex, function: PolicyResource) -> list[tuple[str, object]]:
    """(where, policy document) for every identity policy of the function's role: inline policies, role
    policies and attached managed policies of this stack (Function.role -> Role, RolePolicy.role -> Role,
    RolePolicyAttachment.role -> Role, RolePolicyAttachment.policyArn -> Policy)."""
    found: list[tuple[str, object]] = []
    for role in index.deps(function, "role", types.ROLE):
        # inlinePolicies is computed when left unset (unknown at preview): then the role's inline policies are its
        # RolePolicy resources; a program's own unknown inlinePolicies gives no verdict (`unless_computed`).
        for inline in unless_computed(role, "inlinePolicies") or ():
            found.append((f"{describe(role)} inline policy '{inline.get('name')}'", inline.get("policy")))
        for policy in index.referrers(role, types.ROLE_POLICY, key="role"):
            found.append((describe(policy), policy.props.get("policy")))
        for attachment in index.referrers(role, types.ROLE_POLICY_ATTACHMENT, key="role"):
            for managed in index.deps(attachment, "policyArn", types.MANAGED_POLICY):
                found.append((describe(managed), managed.props.get("policy")))
    return found
