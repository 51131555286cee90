"""The handler's own errors. Their class names are what Step Functions sees as the error of a failed Task."""

from __future__ import annotations


class BatchInferenceError(Exception):
    """Base class of the handler's own errors."""


class InvalidTaskInputError(BatchInferenceError):
    """A function was invoked with input that is not its task's shape (a wiring or operator error)."""


class CorpusBelowBatchMinimumError(BatchInferenceError):
    """Mode `batch` was forced on a corpus smaller than one job's minimum record count."""


class SubmissionRejectedError(BatchInferenceError):
    """Bedrock refused to create the job for good (validation, access); the shard fails."""


class ThrottlingException(BatchInferenceError):
    """Every retry inside the invocation was throttled; Step Functions retries the whole batch later."""


class JobQuotaFullError(BatchInferenceError):
    """The account's concurrent batch-jobs quota is full (other runs' jobs); the Task waits for slots to free up,
    which takes as long as jobs run, far longer than throttling."""


class ModelAccessError(BatchInferenceError):
    """The model refused every record for a systemic reason (access denied, unknown model): fail the batch so the
    Map's tolerated-failure threshold trips instead of flooding the failure lane."""


class ShardBusyError(BatchInferenceError):
    """Another copy of this completion is settling the shard; this message is retried after its visibility timeout."""


class FailureLaneError(BatchInferenceError):
    """The failure lane did not accept every message; the invocation fails and is retried."""


class PublicationFailedError(BatchInferenceError):
    """EventBridge did not accept the run's completion event; the finalizer is retried."""


class PublicationBusyError(BatchInferenceError):
    """Another copy is publishing this run's ending right now (or crashed doing so): retried once its claim runs
    out, when the ending is either published or free to claim."""


class DeadlineFallbackError(BatchInferenceError):
    """A shard still queued behind the concurrent-jobs quota when its job would end after the run's deadline: the
    child catches it and runs the shard's records as synchronous Converse calls instead (once, for good)."""
