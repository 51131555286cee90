"""Run endings: ``batch_inference.run_ended.handler``, fed by the run-endings queue.

A run that fails (the sharder, or a Map past its tolerated failures), times out or is aborted never reaches its
Finalize state: nothing in the state machine catches those, so a redrive can restart where the run stopped. Step
Functions' own ``Step Functions Execution Status Change`` event for such an ending (a rule on the default bus routes
only this state machine's FAILED, TIMED_OUT and ABORTED ones to the queue) becomes the run's manifest and its
``BatchRunCompleted`` event with that status and the error, so the next stage hears of every ending.

Each attempt's ending is published once (the publication is claimed per run, status and redrive count). An ending
that arrives once the run has succeeded (a late event of an attempt that a redrive then completed) is not
published: its claim finds the success published (and waits while the success is being published).

The body is parsed with Powertools' parser straight from its JSON text. Not Powertools' ``EventBridgeModel``: the
reconciler's copy of a missed ending carries the event's source, detail-type and detail but none of EventBridge's
envelope fields (id, account, time), which that model requires.

A message that is not such an event fails alone (partial batch response), is retried and then dead-lettered.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from batch_inference import finalizer
from batch_inference.exceptions import InvalidTaskInputError
from batch_inference.messages import each_message
from batch_inference.tasks import STATUS_CHANGE, UNSUCCESSFUL, FinalizeRequest, task_input
from common.redact import clip

logger = Logger()
metrics = Metrics()


class _Ending(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=1)  # the execution's name: the run id
    status: str
    input: str | None = None  # the execution's input, JSON (absent when too large to include)
    error: str | None = None
    cause: str | None = None
    redriveCount: int = Field(0, ge=0)


class _StatusChange(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    detail_type: str = Field(alias="detail-type")
    detail: _Ending


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    return each_message(event, context, _record)


def _record(record: SQSRecord) -> None:
    change = task_input(record.body, _StatusChange, "run-ended message is not a Step Functions execution status change",
                        not_json=f"run-ended message {record.message_id} is not JSON")
    if change.detail_type != STATUS_CHANGE or change.detail.status not in UNSUCCESSFUL:
        raise InvalidTaskInputError(f"run-ended message {record.message_id} is not an unsuccessful run ending: "
                                    f"{clip(change.detail_type, 80)!r} with status {clip(change.detail.status, 40)!r}")
    report_ending(change.detail)


def report_ending(ending: _Ending) -> dict[str, Any]:
    """The run's manifest and BatchRunCompleted for an unsuccessful attempt; nothing when this attempt's ending was
    published before or the run has succeeded since (see `jobs.JobsTable.claim_publication`)."""
    try:
        corpus_key = json.loads(ending.input or "{}").get("corpusKey") or "(unknown)"
    except (ValueError, AttributeError):
        corpus_key = "(unknown)"
    request = task_input({"status": ending.status, "runId": ending.name, "corpusKey": corpus_key,
                          "attempt": ending.redriveCount,
                          "error": {"Error": ending.error, "Cause": ending.cause}},
                         FinalizeRequest, "run ending is not {name, status}")
    return finalizer.finalize(request)
