"""The batch-inference state machine's Amazon States Language definition, generated from Python.

Pure: `definition(AslParameters(...))` returns the definition as a dict. The component passes ARNs and bucket
names that are Outputs built from physical names (known at preview), and serializes the dict with
``pulumi.Output.json_dumps``; tests pass plain strings, validate the result with asl-validator and execute it.

Shape::

    Shard (sharder Lambda) -> ChooseMode
      batch -> SubmitShards: Distributed Map over the shard list (ItemReader JSON), MaxConcurrency = concurrent
               jobs quota, each child SubmitAndWait (lambda:invoke.waitForTaskToken, heartbeat + timeout bound);
               a shard still queued behind the quota when the run's deadline would be missed (the submitter's
               DeadlineFallbackError) is caught to InferShard: a Distributed Map over that shard's lines, as the
               synchronous Map below, at onDemandConcurrency // concurrentJobs batches at once (at least 1), so all
               switched shards together stay within the sync worker's reserved concurrency
      sync  -> InferRecords: Distributed Map over the prepared JSONL (ItemReader JSONL, ItemBatcher), MaxConcurrency
               = on-demand concurrency, each child InferBatch (sync worker Lambda)
      empty -> NothingToInfer
    -> Finalize (finalizer Lambda: counts, failed units, manifest, BatchRunCompleted) -> end

Nothing catches a failing sharder or Map: the execution fails at that state, so a redrive restarts there (a Map Run
redrives only its failed children) and everything before it stands. That the run ended without succeeding reaches
the next stage from Step Functions' own execution status change event, which the component routes to the run-ended
handler (BatchRunCompleted with the status FAILED, TIMED_OUT or ABORTED), for every way a run can end unsuccessfully.

Both Maps tolerate a configured percentage of failed children, write their children's results to the output
bucket (ResultWriter) and run STANDARD children. Every Task retries Lambda's throttling and service errors with
backoff and full jitter and has a timeout; the sync worker's tasks wait out its reserved concurrency longer (a slot
frees only when another batch ends).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
LAMBDA_CALLBACK = "arn:aws:states:::lambda:invoke.waitForTaskToken"
S3_GET = "arn:aws:states:::s3:getObject"
S3_PUT = "arn:aws:states:::s3:putObject"
JOB_FAILED_ERROR = "BedrockJobFailed"
# The submitter's error for a shard that switches to synchronous calls to meet the run's deadline.
DEADLINE_FALLBACK_ERROR = "DeadlineFallbackError"
# Lambda's own transient errors, as the Lambda integration names them (AWS's recommended retry set).
LAMBDA_THROTTLED = "Lambda.TooManyRequestsException"
LAMBDA_TRANSIENT = ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                    LAMBDA_THROTTLED]
# Errors the handlers raise for throttling (batch_inference.exceptions.ThrottlingException) and model timeouts.
MODEL_THROTTLING = ["ThrottlingException", "ModelTimeoutException"]


@dataclass(frozen=True)
class AslParameters:
    sharder_arn: Any
    submitter_arn: Any
    sync_worker_arn: Any
    finalizer_arn: Any
    output_bucket: Any
    map_results_prefix: str  # ResultWriter prefix in the output bucket, e.g. "runs/map-results"
    concurrent_jobs: int
    on_demand_concurrency: int
    items_per_batch: int
    max_input_bytes_per_batch: int  # a child's items, within Step Functions' payload limit
    tolerated_failure_percentage: float
    job_wait_seconds: int  # bound on one shard's job, from submission to completion
    heartbeat_seconds: int  # the reconciler heartbeats waiting children more often than this
    sharder_timeout_seconds: int
    sync_timeout_seconds: int
    finalizer_timeout_seconds: int
    batch_retries: int  # Step Functions' retries of a throttled sync batch (the sync worker's BATCH_RETRIES)


def _retry(errors: list[str], *, interval: int = 2, attempts: int = 6, max_delay: int = 60,
           jitter: str = "FULL") -> dict[str, Any]:
    return {"ErrorEquals": errors, "IntervalSeconds": interval, "BackoffRate": 2.0, "MaxAttempts": attempts,
            "MaxDelaySeconds": max_delay, "JitterStrategy": jitter}


# A full concurrent-jobs quota frees up as other runs' jobs finish: wait in steps of up to half an hour, for as long
# as a job itself may take (full jitter halves the average step, hence twice the steps).
QUOTA_WAIT_STEP_SECONDS = 1800


def _quota_wait(job_wait_seconds: int) -> dict[str, Any]:
    return _retry(["JobQuotaFullError"], interval=300, max_delay=QUOTA_WAIT_STEP_SECONDS,
                  attempts=2 * -(-job_wait_seconds // QUOTA_WAIT_STEP_SECONDS) + 3)


# The sync worker refused at its reserved concurrency (onDemandConcurrency) while other batches hold it: another
# run's synchronous Map shares it, and with fewer on-demand slots than concurrent jobs each switched shard still runs
# one batch. A slot frees when a batch ends (at most the task's timeout, 900 s): full-jitter waits capped at 5 min
# over 10 attempts add up to about 15 minutes on average (30 at most), a batch's worst case, before the batch fails.
SYNC_WORKER_THROTTLED = _retry([LAMBDA_THROTTLED], interval=10, attempts=10, max_delay=300)


def _invoke(function_arn: Any, payload: dict[str, Any], *, timeout: int, next_state: str | None,
            result_path: str | None, result_selector: dict[str, str] | None = None,
            throttled: dict[str, Any] | None = None, extra_retries: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """A Lambda task; `throttled`: its own retrier for Lambda's throttling (Step Functions uses the first retrier
    that matches an error, so it comes first and the transient one leaves that error out)."""
    transient = LAMBDA_TRANSIENT if throttled is None else [e for e in LAMBDA_TRANSIENT if e != LAMBDA_THROTTLED]
    state: dict[str, Any] = {
        "Type": "Task", "Resource": LAMBDA_INVOKE, "TimeoutSeconds": timeout,
        "Parameters": {"FunctionName": function_arn, "Payload": payload},
        "Retry": [*([throttled] if throttled else []), _retry(transient), *extra_retries],
    }
    if result_selector is not None:
        state["ResultSelector"] = result_selector
    state["ResultPath"] = result_path
    state.update({"Next": next_state} if next_state else {"End": True})
    return state


def _distributed(*, start: str, states: dict[str, Any]) -> dict[str, Any]:
    return {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": start,
            "States": states}


def shard_concurrency(p: AslParameters) -> int:
    """A switched shard's synchronous batches at once. InferShard runs inside each of up to concurrentJobs
    SubmitShards children, all calling the one sync worker reserved at onDemandConcurrency: each child gets an equal
    share, so together they stay within it (at least one each: with fewer on-demand slots than jobs, the rest wait
    on SYNC_WORKER_THROTTLED)."""
    return max(1, p.on_demand_concurrency // p.concurrent_jobs)


def definition(p: AslParameters, *, modes: tuple[str, ...] = ("batch", "sync")) -> dict[str, Any]:
    """The whole definition; `modes` leaves out a Map (only for emulators that cannot load it, such as moto's,
    which rejects ItemBatcher and JSONL readers: tests execute the batch path of the same states)."""
    run_id, corpus_key = "$$.Execution.Name", "$$.Execution.Input.corpusKey"
    finalize_payload = {"status": "SUCCEEDED", "runId.$": run_id, "corpusKey.$": corpus_key,
                        "sharding.$": "$.sharding", "map.$": "$.map"}
    sharding_fields = ("runId", "mode", "corpus", "shardList", "syncInput", "counts", "deadline")
    tolerance = {"ToleratedFailurePercentage": p.tolerated_failure_percentage}
    writer = {"Resource": S3_PUT, "Parameters": {"Bucket": p.output_bucket, "Prefix": p.map_results_prefix}}
    document: dict[str, Any] = {
        "Comment": "Batch inference over a JSONL corpus: Bedrock batch jobs per shard, or synchronous fan-out",
        "StartAt": "Shard",
        "States": {
            "Shard": _invoke(
                p.sharder_arn, {"runId.$": run_id, "corpusKey.$": "$.corpusKey", "options.$": "$",
                                "startTime.$": "$$.Execution.StartTime"}, timeout=p.sharder_timeout_seconds,
                next_state="ChooseMode", result_path="$.sharding",
                result_selector={f"{f}.$": f"$.Payload.{f}" for f in sharding_fields}),
            "ChooseMode": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.sharding.mode", "StringEquals": "batch", "Next": "SubmitShards"},
                            {"Variable": "$.sharding.mode", "StringEquals": "sync", "Next": "InferRecords"}],
                "Default": "NothingToInfer",
            },
            "NothingToInfer": {"Type": "Pass", "Result": {}, "ResultPath": "$.map", "Next": "Finalize"},
            "SubmitShards": {
                "Type": "Map",
                "ItemReader": {"Resource": S3_GET, "ReaderConfig": {"InputType": "JSON"},
                               "Parameters": {"Bucket.$": "$.sharding.shardList.bucket",
                                              "Key.$": "$.sharding.shardList.key"}},
                "ItemSelector": {"runId.$": "$.sharding.runId", "shard.$": "$$.Map.Item.Value",
                                 "deadline.$": "$.sharding.deadline"},
                "MaxConcurrency": p.concurrent_jobs,
                **tolerance,
                "ItemProcessor": _distributed(start="SubmitAndWait", states={"SubmitAndWait": {
                    "Type": "Task", "Resource": LAMBDA_CALLBACK,
                    "Parameters": {"FunctionName": p.submitter_arn,
                                   "Payload": {"runId.$": "$.runId", "shard.$": "$.shard", "deadline.$": "$.deadline",
                                               "taskToken.$": "$$.Task.Token"}},
                    "HeartbeatSeconds": p.heartbeat_seconds, "TimeoutSeconds": p.job_wait_seconds,
                    "Retry": [_retry(LAMBDA_TRANSIENT), _retry(["ThrottlingException"], interval=30, attempts=8,
                                                                max_delay=900),
                              _quota_wait(p.job_wait_seconds),
                              # A lost job or handler: a new token, the same job (same clientRequestToken).
                              _retry(["States.HeartbeatTimeout"], interval=60, attempts=2)],
                    "End": True}}),
                "ResultWriter": writer,
                "ResultPath": "$.map",
                "Next": "Finalize",
            },
            "InferRecords": {
                "Type": "Map",
                "ItemReader": {"Resource": S3_GET, "ReaderConfig": {"InputType": "JSONL"},
                               "Parameters": {"Bucket.$": "$.sharding.syncInput.bucket",
                                              "Key.$": "$.sharding.syncInput.key"}},
                "ItemBatcher": {"MaxItemsPerBatch": p.items_per_batch,
                                "MaxInputBytesPerBatch": p.max_input_bytes_per_batch,
                                "BatchInput": {"runId.$": "$.sharding.runId"}},
                "MaxConcurrency": p.on_demand_concurrency,
                **tolerance,
                "ItemProcessor": _distributed(start="InferBatch", states={"InferBatch": _invoke(
                    p.sync_worker_arn, {"Items.$": "$.Items", "BatchInput.$": "$.BatchInput",
                                        "retryCount.$": "$$.State.RetryCount"},
                    timeout=p.sync_timeout_seconds, next_state=None, result_path="$",
                    result_selector={"counts.$": "$.Payload.counts", "batchKey.$": "$.Payload.batchKey"},
                    throttled=SYNC_WORKER_THROTTLED,
                    extra_retries=(_retry(MODEL_THROTTLING, interval=20, attempts=p.batch_retries, max_delay=600),))}),
                "ResultWriter": writer,
                "ResultPath": "$.map",
                "Next": "Finalize",
            },
            "Finalize": _invoke(p.finalizer_arn, finalize_payload, timeout=p.finalizer_timeout_seconds,
                                next_state=None, result_path="$.result", result_selector={"result.$": "$.Payload"},
                                extra_retries=(_retry(["PublicationFailedError"], interval=5, attempts=5),
                                               # another copy's claim, or a crashed one's: outlast its lease
                                               # (jobs.PUBLICATION_LEASE_SECONDS, 300 s)
                                               _retry(["PublicationBusyError"], interval=5, attempts=8,
                                                      max_delay=300, jitter="NONE"),
                                               # a failed child's shard leased by its completion: outlast the
                                               # lease of a crashed holder (15 minutes)
                                               _retry(["ShardBusyError"], interval=60, attempts=10,
                                                      max_delay=300, jitter="NONE"))),
        },
    }
    states, choices = document["States"], document["States"]["ChooseMode"]["Choices"]
    if "sync" in modes:  # a shard that must meet the deadline runs as the synchronous Map runs a corpus
        child = states["SubmitShards"]["ItemProcessor"]["States"]
        child["SubmitAndWait"]["Catch"] = [{"ErrorEquals": [DEADLINE_FALLBACK_ERROR], "ResultPath": "$.fallback",
                                            "Next": "InferShard"}]
        batch = states["InferRecords"]["ItemProcessor"]["States"]["InferBatch"]
        child["InferShard"] = {
            **{key: value for key, value in states["InferRecords"].items()
               if key not in ("ItemReader", "Next", "ItemProcessor")},
            "MaxConcurrency": shard_concurrency(p),
            "ItemProcessor": _distributed(start="InferShardBatch", states={"InferShardBatch": batch}),
            "ItemReader": {"Resource": S3_GET, "ReaderConfig": {"InputType": "JSONL"},
                           "Parameters": {"Bucket.$": "$.shard.bucket", "Key.$": "$.shard.key"}},
            # The shard's id on its batches' ledger claims: a failed child is settled from them (the finalizer).
            "ItemBatcher": {**states["InferRecords"]["ItemBatcher"],
                            "BatchInput": {"runId.$": "$.runId", "shardId.$": "$.shard.shardId"}},
            "ResultPath": "$.switched", "End": True}
    for mode, state in (("batch", "SubmitShards"), ("sync", "InferRecords")):
        if mode not in modes:
            del states[state]
            choices[:] = [c for c in choices if c["Next"] != state]
    return document
