"""SQS queues and what hangs off them: consumers' timeouts, dead-letter queues, their alarms, encryption."""

from __future__ import annotations

from collections.abc import Sequence

from pulumi_policy import PolicyResource, Severity

from . import relations
from .core import aws_defaults, documents, types
from .core.frameworks import serverless_lens, well_architected
from .core.rule import Rule, StackContext, describe
from .core.values import as_list, fmt, get_path, json_document, number, truthy, unless_computed


def _visibility_covers_consumer(ctx: StackContext) -> None:
    ratio = float(ctx.settings["ratio"])
    for link in relations.sqs_mappings(ctx.index):
        if link.function is None:
            continue
        with ctx.about(link.queue):
            visibility = number(link.queue.props.get("visibilityTimeoutSeconds"),
                                aws_defaults.SQS_VISIBILITY_TIMEOUT_SECONDS)
            timeout = number(link.function.props.get("timeout"), aws_defaults.LAMBDA_TIMEOUT_SECONDS)
            window = number(link.mapping.props.get("maximumBatchingWindowInSeconds"),
                            aws_defaults.MAPPING_BATCHING_WINDOW_SECONDS)
            needed = ratio * timeout + window
            if visibility < needed:
                ctx.violation(link.queue, (
                    f"{describe(link.queue)} visibilityTimeoutSeconds {fmt(visibility)} s < {fmt(ratio)} x "
                    f"{describe(link.function)} timeout {fmt(timeout)} s + {describe(link.mapping)} "
                    f"maximumBatchingWindowInSeconds {fmt(window)} s = {fmt(needed)} s; a message still being "
                    f"processed (or retried after throttling) would be delivered twice"))


def _redrive_to_dlq(ctx: StackContext) -> None:
    low, high = float(ctx.settings["minMaxReceiveCount"]), float(ctx.settings["maxMaxReceiveCount"])
    for queue, feeds in relations.delivered_queues(ctx.index).values():
        with ctx.about(queue):
            subject = f"{describe(queue)} ({'; '.join(feeds)})"
            redrive = json_document(relations.redrive_policy(ctx.index, queue))
            if not redrive or not redrive.get("deadLetterTargetArn"):
                ctx.violation(queue, f"{subject} has no redrivePolicy with a deadLetterTargetArn, so a message "
                                     f"that always fails is retried until retention drops it")
                continue
            count = number(redrive.get("maxReceiveCount"), aws_defaults.SQS_MAX_RECEIVE_COUNT)
            if not low <= count <= high:
                ctx.violation(queue, f"{subject} redrivePolicy maxReceiveCount {fmt(count)} is outside "
                                     f"{fmt(low)}..{fmt(high)}")


def _metric_names(alarm: PolicyResource) -> set[str]:
    names = {str(alarm.props.get("metricName") or "")}
    for query in as_list(alarm.props.get("metricQueries")):
        names.add(str(get_path(query, "metric", "metricName", default="")))
    return names - {""}


def _alarms_on(ctx: StackContext, queue: PolicyResource, metric: str) -> list[PolicyResource]:
    """Alarms with a property built from `queue` (dimensions or metric queries) that watch `metric`."""
    return [alarm for alarm in ctx.index.referrers(queue, types.METRIC_ALARM)
            if metric in _metric_names(alarm) and alarm.props.get("namespace", "AWS/SQS") in ("AWS/SQS", None)]


def _fires_on_first_message(alarm: PolicyResource) -> bool:
    threshold = number(alarm.props.get("threshold"), -1)
    operator = alarm.props.get("comparisonOperator")
    return ((operator == "GreaterThanThreshold" and threshold == 0)
            or (operator == "GreaterThanOrEqualToThreshold" and threshold == 1))


def _dlq_alarm_problem(alarms: Sequence[PolicyResource]) -> str | None:
    if not alarms:
        return "has no alarm on ApproximateNumberOfMessagesVisible"
    for alarm in alarms:
        if _fires_on_first_message(alarm) and as_list(alarm.props.get("alarmActions")):
            return None
    return "; ".join(
        f"{describe(a)} fires on {a.props.get('comparisonOperator')} {_threshold_text(a)} "
        f"with {len(as_list(a.props.get('alarmActions')))} alarm action(s)" for a in alarms)


def _threshold_text(alarm: PolicyResource) -> str:
    """An alarm without a static threshold (one on an anomaly band, thresholdMetricId) says so: printing a stand-in
    number would read like the very threshold the remediation asks for."""
    threshold = alarm.props.get("threshold")
    return "no threshold" if threshold is None or threshold == "" else fmt(float(threshold))


def _dlq_and_age_alarms(ctx: StackContext) -> None:
    for dlq, sources in relations.dead_letter_queues(ctx.index).values():
        with ctx.about(dlq):
            problem = _dlq_alarm_problem(_alarms_on(ctx, dlq, "ApproximateNumberOfMessagesVisible"))
            if problem:
                ctx.violation(dlq, f"{describe(dlq)} (dead-letter queue of {sources}) {problem}; it needs "
                                   f"ApproximateNumberOfMessagesVisible GreaterThanThreshold 0 with an alarm action, "
                                   f"or dead-lettered messages wait unseen until retention drops them")
    for link in relations.sqs_mappings(ctx.index):
        with ctx.about(link.queue):
            if not _alarms_on(ctx, link.queue, "ApproximateAgeOfOldestMessage"):
                ctx.violation(link.queue, f"{describe(link.queue)} ({link.feeds()}) has no "
                                          f"ApproximateAgeOfOldestMessage alarm, so a stalled worker goes unnoticed")


def _retention(queue: PolicyResource) -> float:
    return number(queue.props.get("messageRetentionSeconds"), aws_defaults.SQS_MESSAGE_RETENTION_SECONDS)


def _dlq_outlives_source(ctx: StackContext) -> None:
    by_urn = {q.urn: q for q in ctx.index.of_type(types.QUEUE)}
    for dlq_urn, sources in relations.redrive_sources(ctx.index).items():
        dlq = by_urn[dlq_urn]
        for source in sources:
            with ctx.about(source):
                # A standard queue keeps a message's original enqueue time when it moves to the DLQ; a FIFO
                # queue resets it, so only standard sources need the longer retention.
                if truthy(source.props.get("fifoQueue")):
                    continue
                if _retention(dlq) <= _retention(source):
                    ctx.violation(dlq, (
                        f"{describe(dlq)} messageRetentionSeconds {fmt(_retention(dlq))} s <= source "
                        f"{describe(source)} messageRetentionSeconds {fmt(_retention(source))} s; a message "
                        f"keeps its original enqueue time when dead-lettered, so it would expire on arrival"))


def _encryption_problem(ctx: StackContext, resource: PolicyResource) -> str | None:
    if resource.props.get("kmsMasterKeyId"):
        return None
    if resource.resource_type == types.TOPIC:
        return "sets no kmsMasterKeyId"
    # sqsManagedSseEnabled is computed when left unset (unknown at preview; `unless_computed` reads that as not
    # set): with requireExplicitEncryption that is a violation, without it the AWS default (SSE-SQS on) applies.
    managed = unless_computed(resource, "sqsManagedSseEnabled")
    if truthy(managed):
        return None
    if managed is not None:
        return "sets sqsManagedSseEnabled false and no kmsMasterKeyId"
    if ctx.settings["requireExplicitEncryption"]:
        return "sets neither sqsManagedSseEnabled nor kmsMasterKeyId (relying on the account default)"
    return None


def _resource_policies(ctx: StackContext, resource: PolicyResource) -> list[object]:
    """The resource policy documents in force: the separate policy resources if the stack uses them (then the
    owner's own `policy` is computed from them, unknown at preview), else the owner's `policy`, which is computed
    when left unset (`unless_computed` tells that from a program's own unknown document, which gives no verdict)."""
    attached_type, key = ((types.TOPIC_POLICY, "arn") if resource.resource_type == types.TOPIC
                          else (types.QUEUE_POLICY, "queueUrl"))
    attached = ctx.index.referrers(resource, attached_type, key=key)
    if attached:
        return [p.props.get("policy") for p in attached]
    return [unless_computed(resource, "policy")]


def _encrypted_tls_only(ctx: StackContext) -> None:
    for resource in ctx.index.of_type(types.QUEUE, types.TOPIC):
        with ctx.about(resource):
            problem = _encryption_problem(ctx, resource)
            if problem:
                ctx.violation(resource, f"{describe(resource)} {problem}; messages must be encrypted at rest")
            key = "topicTlsActions" if resource.resource_type == types.TOPIC else "queueTlsActions"
            required = [str(a) for a in ctx.settings[key]]
            if not any(documents.denies_insecure_transport(p, required) for p in _resource_policies(ctx, resource)):
                ctx.violation(resource, f"{describe(resource)} has no resource policy denying "
                                        f"{', '.join(required)} when aws:SecureTransport is false, so clients may use "
                                        f"plain HTTP")


RULES = (
    Rule(
        name="sqs-visibility-timeout-covers-consumer",
        what="A queue's visibility timeout >= ratio x its Lambda consumer's timeout + the mapping's maximum "
             "batching window (AWS defaults: 30 s visibility, 3 s timeout).",
        why="A shorter visibility timeout makes a message visible again while its batch is still running, so "
            "it is processed twice (AWS recommends six times the function timeout plus the window).",
        scope="stack",
        check=_visibility_covers_consumer,
        severity=Severity.MEDIUM,
        frameworks=(
            serverless_lens("REL 2", spec="Building resiliency into a serverless application"),
            well_architected("REL05-BP03", spec="Control and limit retry calls"),
        ),
        remediation=(
            "Raise the queue's visibilityTimeoutSeconds to at least ratio x the function timeout + the "
            "batching window (or shorten the function timeout)."
        ),
        url="https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html#events-sqs-queueconfig",
        settings={"ratio": {"type": "number", "minimum": 1, "default": 6,
                            "description": "Multiple of the function timeout the visibility timeout must cover."}},
        relations=("EventSourceMapping.eventSourceArn -> Queue", "EventSourceMapping.functionName -> Function"),
    ),
    Rule(
        name="sqs-redrive-to-dlq",
        what="Every queue a Lambda consumes, or S3 or EventBridge delivers to, has a redrive policy to a DLQ "
             "with maxReceiveCount in the configured range (AWS default when left out: 10).",
        why="Without a DLQ a poison message is retried until retention silently drops it; a maxReceiveCount "
            "below 5 dead-letters messages that were only throttled.",
        scope="stack",
        check=_redrive_to_dlq,
        severity=Severity.MEDIUM,
        frameworks=(
            serverless_lens("REL 2", spec="Building resiliency into a serverless application"),
            well_architected("REL05-BP03", spec="Control and limit retry calls"),
        ),
        remediation=(
            "Give the queue a redrive policy (on the queue or as an aws.sqs.RedrivePolicy) naming a "
            "dead-letter queue, with maxReceiveCount within the configured range."
        ),
        url="https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html",
        settings={
            "minMaxReceiveCount": {"type": "integer", "minimum": 1, "default": 5,
                                   "description": "Lowest maxReceiveCount accepted."},
            "maxMaxReceiveCount": {"type": "integer", "minimum": 1, "default": 100,
                                   "description": "Highest maxReceiveCount accepted."},
        },
        relations=("EventSourceMapping.eventSourceArn -> Queue", "BucketNotification.queues -> Queue",
                   "EventTarget.arn -> Queue", "RedrivePolicy.queueUrl -> Queue"),
    ),
    Rule(
        name="sqs-dlq-and-age-alarms",
        what="Every DLQ has an ApproximateNumberOfMessagesVisible > 0 alarm with an action; every worker's "
             "source queue has an ApproximateAgeOfOldestMessage alarm.",
        why="A dead-lettered message is a failure someone must see; an ageing source queue is a stalled worker.",
        scope="stack",
        check=_dlq_and_age_alarms,
        severity=Severity.MEDIUM,
        frameworks=(
            well_architected("REL06-BP03", spec="Send notifications (real-time processing and alarming)"),
            serverless_lens("OPS 1", spec="Evaluating a serverless application's health"),
        ),
        remediation=(
            "Add a MetricAlarm on the DLQ's ApproximateNumberOfMessagesVisible > 0 and on the source "
            "queue's ApproximateAgeOfOldestMessage, each with an alarm action (an SNS topic the on-call "
            "team reads)."
        ),
        url="https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html",
        relations=("Queue.redrivePolicy -> Queue (the DLQ)", "RedrivePolicy.redrivePolicy -> Queue (the DLQ)",
                   "EventTarget.deadLetterConfig -> Queue",
                   "MetricAlarm.dimensions (or metricQueries) -> Queue",
                   "EventSourceMapping.eventSourceArn -> Queue"),
    ),
    Rule(
        name="sqs-dlq-retention-exceeds-source",
        what="A standard queue's DLQ keeps messages longer than the queue itself (AWS default retention 4 days).",
        why="A standard queue's message keeps its original enqueue time in the DLQ; with equal retention it "
            "expires the moment it is dead-lettered.",
        scope="stack",
        check=_dlq_outlives_source,
        severity=Severity.MEDIUM,
        frameworks=(
            serverless_lens("REL 2", spec="Building resiliency into a serverless application"),
        ),
        remediation=(
            "Set the DLQ's messageRetentionSeconds above the source queue's (the maximum is 14 days: "
            "1209600)."
        ),
        url="https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html",
        relations=("Queue.redrivePolicy -> Queue (the DLQ)", "RedrivePolicy.redrivePolicy -> Queue (the DLQ)"),
    ),
    Rule(
        name="messaging-encrypted-tls-only",
        what="Queues and topics are encrypted at rest and have a resource policy denying non-TLS access.",
        why="Pipeline messages carry document and model data; encryption at rest and TLS-only access are the "
            "baseline for any data store.",
        scope="stack",
        check=_encrypted_tls_only,
        severity=Severity.HIGH,
        frameworks=(
            well_architected("SEC08-BP02", "SEC09-BP02",
                spec="Enforce encryption at rest; enforce encryption in transit"),
        ),
        remediation=(
            "Set sqsManagedSseEnabled or kmsMasterKeyId on the queue (kmsMasterKeyId on the topic), and "
            "attach a QueuePolicy/TopicPolicy with a Deny of the configured actions when "
            "aws:SecureTransport is false."
        ),
        url="https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-security-best-practices.html",
        settings={
            "requireExplicitEncryption": {
                "type": "boolean", "default": True,
                "description": "Require queues to set sqsManagedSseEnabled or kmsMasterKeyId rather than rely on "
                               "the account's default."},
            "queueTlsActions": {
                "type": "array", "items": {"type": "string"}, "default": ["sqs:*"],
                "description": "Actions a queue policy must deny over plain HTTP."},
            "topicTlsActions": {
                "type": "array", "items": {"type": "string"}, "default": ["sns:Publish"],
                "description": "Actions a topic policy must deny over plain HTTP (AWS's SNS guidance denies "
                               "sns:Publish)."},
        },
        relations=("QueuePolicy.queueUrl -> Queue", "TopicPolicy.arn -> Topic"),
    ),
)
