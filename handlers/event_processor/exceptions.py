"""Errors that fail one record. Each is reported as a batch item failure, so SQS redelivers that record alone
and, past maxReceiveCount, dead-letters it where an alarm pages someone."""

from __future__ import annotations


class EventProcessorError(Exception):
    """Base class of the handler's own errors."""


class RejectedEventError(EventProcessorError):
    """The record is not a usable event (bad JSON, wrong type, a field of the wrong type, too large...)."""


class ModelCallError(EventProcessorError):
    """Bedrock refused the request for good (access denied, validation, unknown model)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class RetriesExhaustedError(EventProcessorError):
    """A retryable failure (throttling, timeout, outage) outlasted the invocation's time budget."""

    def __init__(self, message: str, *, attempts: int, code: str) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.code = code


class PublicationInProgressError(EventProcessorError):
    """Another copy of this item holds the claim to publish its result; this copy is retried later."""


class ResultStoreError(EventProcessorError):
    """The results table refused a write for a reason other than the item being there already."""


class InvalidModelAnswerError(EventProcessorError):
    """The model's answer does not fit the task's schema or labels (or could not be parsed): never a result."""
