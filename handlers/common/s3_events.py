"""Pydantic models of the S3 messages a queue-fed handler receives: event notifications and the test event.

They name only the fields the handlers read. Powertools' ``S3Model`` also requires the requester's IP, the
response elements and (for creations) the eTag, and its pre-validator raises ``TypeError`` rather than a
``ValidationError`` when a field has the wrong type; either would turn a real change, or a malformed message,
into an unhandled error instead of a defined outcome. The models are strict, so a wrong field type is rejected
rather than coerced.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True)


class S3BucketRef(Strict):
    name: str = Field(min_length=1)


class S3ObjectRef(Strict):
    key: str = Field(min_length=1)
    size: int | None = Field(default=None, ge=0)
    eTag: str | None = None
    versionId: str | None = None
    sequencer: str | None = None


class S3Entity(Strict):
    bucket: S3BucketRef
    object: S3ObjectRef


class S3EventRecord(Strict):
    eventSource: Literal["aws:s3"]
    eventName: str = Field(min_length=1)
    s3: S3Entity


class S3EventNotification(Strict):
    Records: list[S3EventRecord] = Field(min_length=1)


class S3TestEvent(Strict):
    Service: Literal["Amazon S3"]
    Event: Literal["s3:TestEvent"]
    Bucket: str
