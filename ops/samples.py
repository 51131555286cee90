"""One line per sampled message: what it is and, as far as can be told, why it failed.

The reason comes from the message itself when it carries one (EventBridge and Scheduler put ``ERROR_CODE`` and
``ERROR_MESSAGE`` attributes on what they could not deliver; Lambda's on-failure record holds the error; a
failure-lane record names its stage and reason), else from the consuming function's log, which names every
message it fails by ``messageId`` (SQS keeps a message's id when it dead-letters it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ops.queues import body_json

LAMBDA_FAILURE = "failed asynchronous run (Lambda on-failure record)"


@dataclass(frozen=True)
class Sample:
    message_id: str
    kind: str
    what: str
    why: str | None
    receives: int

    def line(self) -> str:
        why = self.why or "no reason recorded (look in the consumer's log around the first receive)"
        return f"{self.message_id}: {self.kind}: {self.what} | received {self.receives}x | {why}"


def describe(message: dict[str, Any], *, from_log: Callable[[str, int], str | None] | None = None) -> Sample:
    attributes = message.get("Attributes", {})
    message_id = str(message.get("MessageId", "?"))
    receives = int(attributes.get("ApproximateReceiveCount", 0))
    kind, what, why = classify(message)
    if why is None and from_log is not None:
        why = from_log(message_id, int(attributes.get("SentTimestamp", 0)))
    return Sample(message_id, kind, what, why, receives)


def classify(message: dict[str, Any]) -> tuple[str, str, str | None]:
    """(kind, what, reason carried by the message or None)."""
    body, values = body_json(message), message.get("MessageAttributes", {})
    carried = _attribute(values, "ERROR_CODE")
    if carried is not None:
        carried = f"{carried}: {_attribute(values, 'ERROR_MESSAGE') or ''}".strip(": ")
    if not isinstance(body, dict):
        text = str(message.get("Body", ""))
        return "not JSON", text[:120] or "(empty body)", carried
    if "requestContext" in body and "responseContext" in body:
        payload = body.get("responsePayload") or {}
        error = f"{payload.get('errorType', '')}: {payload.get('errorMessage', '')}" if isinstance(payload, dict) \
            else str(payload)
        condition = body["requestContext"].get("condition", "") if isinstance(body["requestContext"], dict) else ""
        return LAMBDA_FAILURE, f"condition {condition}", error.strip(": ")[:300] or carried
    if isinstance(body.get("Records"), list):
        records = [r for r in body["Records"] if isinstance(r, dict)]
        objects = [f"{r.get('eventName', '?')} s3://{r.get('s3', {}).get('bucket', {}).get('name', '?')}/"
                   f"{r.get('s3', {}).get('object', {}).get('key', '?')}" for r in records]
        return "S3 notification", "; ".join(objects[:3]) + (" ..." if len(objects) > 3 else ""), carried
    if "detail-type" in body:
        return ("event", f"{body.get('source')} / {body.get('detail-type')} id {body.get('id')}", carried)
    if "runId" in body and "stage" in body:
        source = body.get("source") or {}
        where = f"line {body['lineNumber']}" if body.get("lineNumber") else f"record {body.get('recordId')}"
        return ("failure-lane record", f"run {body['runId']} {where} of s3://{source.get('bucket')}/{source.get('key')}",
                f"{body['stage']}/{body.get('reason')}: {str(body.get('detail', ''))[:200]}")
    if body.get("source") == "schedule":
        return "scheduled run", f"tick {body.get('scheduledTime', '?')}", carried
    return "message", ", ".join(sorted(body))[:120], carried


def _attribute(values: dict[str, Any], name: str) -> str | None:
    value = values.get(name)
    return str(value.get("StringValue")) if isinstance(value, dict) and "StringValue" in value else None
