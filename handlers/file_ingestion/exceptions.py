"""Errors of the ingestion handler. Each names the bucket and key (or the batch) and the cause, never a value."""

from __future__ import annotations


class FileIngestionError(Exception):
    """Base class of the handler's own errors."""


class RejectedMessageError(FileIngestionError):
    """One SQS message cannot be loaded; the batch processor reports it alone as a batch item failure."""


class ObjectReadError(FileIngestionError):
    """An object could not be read (access, throttling, a network error); its message is retried."""


class DatabaseWriteError(FileIngestionError):
    """The batch's transaction failed; nothing of it was written and every message of the batch is retried."""


class UnroutedKeyError(FileIngestionError):
    """A key under the input rules that no configured dataset prefix covers; its message is dead-lettered."""
