"""Errors the handler raises. Each fails the invocation, so its source retries it and, past its retry budget,
dead-letters it where an alarm pages someone; each message names the knowledge base and the cause."""

from __future__ import annotations


class KbSyncError(Exception):
    """Base class of the handler's own errors."""


class IngestionStartError(KbSyncError):
    """Bedrock refused StartIngestionJob for a reason other than a job already running."""

    def __init__(self, message: str, *, knowledge_base_id: str, code: str) -> None:
        super().__init__(message)
        self.knowledge_base_id = knowledge_base_id
        self.code = code


class FollowUpSendError(KbSyncError):
    """The follow-up that guarantees a later sync could not be enqueued."""


class FollowUpsExhaustedError(KbSyncError):
    """A scheduled run conflicted and no follow-up is allowed (``MAX_FOLLOW_UPS=0``)."""


class UnrecognisedInvocationError(KbSyncError):
    """The function was invoked with neither an SQS batch nor a schedule request."""


class RejectedMessageError(KbSyncError):
    """Raised for one unusable SQS record so the batch processor reports it alone as a batch item failure."""


class DirectIngestionError(KbSyncError):
    """Bedrock failed a direct-ingestion request for a reason that a retry may cure (throttling, an outage)."""


class BucketListingError(KbSyncError):
    """The data-source bucket could not be listed to tell whether a document still exists."""


class JobCheckError(KbSyncError):
    """The status of an ingestion job could not be read."""
