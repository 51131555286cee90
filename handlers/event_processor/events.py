"""Parser models: the EventBridge event in each SQS body, and the ``ProcessingCompleted`` event this function emits.

The input model extends Powertools' ``EventBridgeModel`` with the item a producer sends as ``detail``. It is
lenient about the envelope fields a consumer never reads (``version``, ``account``, ``time``, ``region``,
``resources``): EventBridge always sets them, but emulators and replays do not always, and nothing here depends
on them. It is strict about what it does read: ``id``, ``source``, ``detail-type`` and the item.

Example of a producer's event (``PutEvents`` entry)::

    {"Source": "com.example.documents", "DetailType": "DocumentSubmitted",
     "Detail": "{\\"itemId\\": \\"doc-42\\", \\"content\\": \\"...\\", \\"reference\\": \\"s3://docs/doc-42.pdf\\"}"}
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

COMPLETED_DETAIL_TYPE = "ProcessingCompleted"


class WorkItem(BaseModel):
    """The ``detail`` of an input event: one item to process."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    itemId: str = Field(min_length=1, max_length=256, description="The producer's id of the item.")
    content: str = Field(min_length=1, description="The text the model works on; never leaves this function.")
    reference: str | None = Field(
        None,
        min_length=1,
        max_length=2048,
        description="Where the original lives (a URI, a ticket id); carried to results.",
    )


class InputEvent(EventBridgeModel):
    """An EventBridge event carrying a ``WorkItem``."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    id: str = Field(min_length=1, max_length=128)  # EventBridge's own field name
    version: str = "0"
    account: str = ""
    time: datetime | None = None  # type: ignore[assignment]
    region: str = ""
    resources: list[str] = Field(default_factory=list)
    detail: WorkItem  # type: ignore[assignment]


class InputReference(BaseModel):
    """What identifies the input in a result: enough to find it again, none of its content."""

    model_config = ConfigDict(frozen=True)

    eventId: str
    source: str
    detailType: str
    itemId: str
    reference: str | None = None
    itemVersion: str | None = None  # SHA-256 of the item's content and reference (``keys.content_version``)

    @classmethod
    def of(cls, event: InputEvent, version: str | None = None) -> InputReference:
        return cls(
            eventId=event.id,
            source=event.source,
            detailType=event.detail_type,
            itemId=event.detail.itemId,
            reference=event.detail.reference,
            itemVersion=version,
        )


class Usage(BaseModel):
    model_config = ConfigDict(frozen=True)

    inputTokens: int = Field(ge=0)
    outputTokens: int = Field(ge=0)


class ModelAnswer(BaseModel):
    """What one model call produced; remembered by the idempotency record, so a retry reuses it."""

    model_config = ConfigDict(frozen=True)

    text: str
    stopReason: str
    usage: Usage
    completedAt: str  # ISO 8601, UTC
    structured: dict[str, Any] | None = None  # the tool input, once validated against the task's schema


class CompletedDetail(BaseModel):
    """The ``detail`` of a ``ProcessingCompleted`` event: the result and a reference to the input."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resultId: str
    task: str
    modelId: str
    result: dict[str, Any]
    usage: Usage
    input: InputReference
    resultsTable: str
    completedAt: str
