"""The shapes of the functions' inputs (what the state machine, EventBridge and the reconciler send). Validated
with Powertools' parser, so a malformed input fails with the field named instead of a KeyError deep inside."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from pydantic import BaseModel, ConfigDict, Field

from batch_inference.exceptions import InvalidTaskInputError
from common.redact import clip

_ID = r"^[A-Za-z0-9_-]{1,80}$"
# Step Functions' event for an execution that ended, and the endings of a run that did not succeed.
STATUS_CHANGE = "Step Functions Execution Status Change"
UNSUCCESSFUL = ("FAILED", "TIMED_OUT", "ABORTED")


class _Input(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


Task = TypeVar("Task", bound=BaseModel)


def task_input(event: Any, model: type[Task], expected: str, *, not_json: str | None = None) -> Task:
    """``event`` as ``model``; ``InvalidTaskInputError`` saying what was ``expected`` and the first problems (where
    and which rule, not the value). ``event`` may be JSON text (an SQS body), which fails with ``not_json`` when it is
    not JSON at all."""
    try:
        return parse(event=event, model=model)  # a str is parsed as JSON (validate_json)
    except ValidationError as error:
        # The message becomes the error log and the Step Functions cause: the fields and the rules they broke,
        # never the values a producer sent (a 200 KB key would be repeated whole).
        problems = error.errors(include_input=False, include_url=False, include_context=False)[:3]
        if not_json is not None and problems and problems[0]["type"] == "json_invalid":
            raise InvalidTaskInputError(not_json) from None
        raise InvalidTaskInputError(clip(f"{expected}: {problems}", 1000)) from None


class ShardRequest(_Input):
    runId: str = Field(pattern=_ID)
    corpusKey: str = Field(min_length=1, max_length=1024)
    options: dict[str, Any] | None = None  # the execution's input (its optional deadline)
    startTime: str | None = Field(None, max_length=64)


class ShardDescriptor(_Input):
    shardId: str = Field(pattern=r"^[0-9]{5}$")
    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1, max_length=1024)
    records: int = Field(ge=1)


class SubmitRequest(_Input):
    runId: str = Field(pattern=_ID)
    shard: ShardDescriptor
    taskToken: str = Field(min_length=1, max_length=1024)
    deadline: str | None = Field(None, max_length=64)


class SyncItem(_Input):
    recordId: str = Field(min_length=1, max_length=256)
    modelInput: dict[str, Any]


class SyncBatchInput(_Input):
    runId: str = Field(pattern=_ID)
    shardId: str | None = Field(None, pattern=r"^[0-9]{5}$")  # a switched shard's batch (InferShard)


class SyncBatch(_Input):
    Items: list[SyncItem] = Field(min_length=1, max_length=10_000)
    BatchInput: SyncBatchInput
    retryCount: int = Field(0, ge=0)


class ScheduledTick(_Input):
    source: Literal["schedule"]
    scheduledTime: str | None = None


class Location(_Input):
    bucket: str
    key: str


class ShardingOutput(_Input):
    runId: str = Field(pattern=_ID)
    mode: Literal["batch", "sync", "empty"]
    corpus: Location
    counts: dict[str, int]
    deadline: str | None = None


class FinalizeRequest(_Input):
    status: Literal["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
    attempt: int = Field(0, ge=0)  # the execution's redrive count: each unsuccessful attempt is reported once
    runId: str = Field(pattern=_ID)
    corpusKey: str = Field(min_length=1, max_length=1024)
    sharding: ShardingOutput | None = None  # absent when the sharder itself failed
    map: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
