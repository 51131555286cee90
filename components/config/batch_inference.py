"""Config of the batch-inference pipeline."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from components import defaults
from components.config.model import ModelSettings
from components.config.sections import (
    EVENT_SOURCE_PATTERN,
    QueueSettings,
    RetentionDays,
    Section,
    WorkerSettings,
    each_matching,
    retention_days,
)

# Batch inference: the model families whose native request format the sharder builds (requestFormat native).
_BATCH_MODEL_FAMILIES = ("anthropic.", "amazon.nova")
_GEOGRAPHIES = ("us.", "eu.", "apac.", "us-gov.", "jp.", "au.", "ca.", "global.")
# Bedrock batch inference's price as a share of the on-demand price of the same model (the price table's
# batch_discount).
BATCH_PRICE_FACTOR = 0.5


_SUBNET_ID = r"^subnet-[0-9a-f]{8,17}$"
_SECURITY_GROUP_ID = r"^sg-[0-9a-f]{8,17}$"
KMS_KEY_ARN_PATTERN = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]{1,64}$"


class BatchJobVpc(Section):
    """The VPC a batch job reads its shards and writes its output from (CreateModelInvocationJob's vpcConfig)."""

    subnet_ids: Annotated[tuple[str, ...], each_matching(_SUBNET_ID, "subnet ids")] = Field(
        min_length=1, max_length=16, description="Subnets of the jobs' network interfaces, 1..16.")
    security_group_ids: Annotated[tuple[str, ...], each_matching(_SECURITY_GROUP_ID, "security group ids")] = Field(
        min_length=1, max_length=5, description="Security groups of the jobs' network interfaces, 1..5.")


class TokenPrices(Section):
    """The run's model's on-demand token prices, for a model or region the built-in price map lacks."""

    input_per_million_tokens: float = Field(ge=0, le=1000, description="USD per million input tokens, on demand.")
    output_per_million_tokens: float = Field(ge=0, le=1000, description="USD per million output tokens, on demand.")
    batch_discount: float = Field(BATCH_PRICE_FACTOR, gt=0, le=1,
                                  description="Batch inference's price as a share of the on-demand price.")


class BatchInferenceSettings(Section):
    """Large-scale batch inference: S3 JSONL corpus -> Step Functions Distributed Map -> Bedrock batch jobs (mode A)
    or synchronous Converse fan-out (mode B) -> S3 results, failure lane, BatchRunCompleted on a result bus."""

    enabled: bool = Field(True, description="Build this pipeline in the stack.")
    model: ModelSettings = Field(description="The model or inference profile, the task and its prompt template.")
    mode: Literal["batch", "sync", "auto"] = Field(
        "auto", description="batch: Bedrock batch jobs; sync: Converse per record; auto: batch when the corpus "
                            "reaches minRecordsPerJob.")
    request_format: Literal["converse", "native"] = Field(
        "converse", description="converse: every record's modelInput is a Converse request built from the one "
                                "prompt template, for batch jobs (modelInvocationType Converse) and synchronous "
                                "calls alike, for any model whose batch inference supports Converse; native: the "
                                "model's own InvokeModel body (Anthropic Claude and Amazon Nova only), for a model "
                                "whose batch jobs do not take Converse.")
    corpus_prefix: str = Field("corpus/", pattern=r"^[A-Za-z0-9][A-Za-z0-9!_.*'()-]*/$",
                               description="Key prefix of the corpora in the input bucket (the sharder reads only "
                                           "there).")
    text_field: str = Field("text", pattern=r"^[^\s]{1,128}$", description="JSON field holding a record's text.")
    id_field: str = Field("id", pattern=r"^[^\s]{1,128}$",
                          description="JSON field holding a record's id; without it the recordId is a content hash.")
    min_records_per_job: int = Field(100, ge=1, le=100_000,
                                     description="Bedrock's per-job minimum record count (Service Quotas).")
    max_records_per_job: int = Field(50_000, ge=2, le=1_000_000,
                                     description="Bedrock's per-job (and per-file) maximum record count.")
    max_file_bytes: int = Field(1 << 30, ge=1 << 20, le=5 << 30,
                                description="Bedrock's maximum input file size in bytes (a shard's size limit).")
    max_record_bytes: int = Field(100_000, ge=1024, le=1 << 20,
                                  description="Longest corpus line and shard line accepted, in bytes; longer lines "
                                              "go to the failure lane. With mode sync or auto, one such line must "
                                              "fit in a Step Functions payload (at most 261120).")
    concurrent_jobs: int = Field(10, ge=1, le=100,
                                 description="Concurrent batch jobs quota: the batch Map's MaxConcurrency and the "
                                             "submitter's reserved concurrency.")
    concurrent_runs: int = Field(
        2, ge=1, le=100,
        description="Runs the stack serves at the same time: the sharder and the finalizer each reserve this many "
                    "concurrent executions, one per run. A run that starts while this many are sharding waits "
                    "through Step Functions' retries of the throttled sharder (about two minutes), then fails and "
                    "can be redriven; the sharder's throttle alarm says so.")
    job_timeout_hours: int = Field(24, ge=24, le=168, description="timeoutDurationInHours of each batch job.")
    run_deadline_hours: int | None = Field(
        None, ge=1, le=720,
        description="A run's deadline, in hours after it started (a run's input may name its own: \"deadline\", "
                    "ISO 8601 with a zone). A shard still queued behind the concurrent-jobs quota when a job started "
                    "then would end after the deadline switches to synchronous calls, once; the manifest lists "
                    "it. Omit for no deadline.")
    deadline_job_hours: int = Field(
        24, ge=1, le=168, description="How long a batch job is expected to take once it starts, for the deadline: "
                                      "a queued shard switches when now plus this passes the deadline.")
    on_demand_concurrency: int = Field(10, ge=1, le=1000,
                                       description="Concurrent synchronous batches the on-demand quota allows: the "
                                                   "sync Map's MaxConcurrency and the worker's reserved concurrency. "
                                                   "A shard switched to synchronous calls for the deadline runs "
                                                   "onDemandConcurrency // concurrentJobs of them (at least 1), so "
                                                   "all switched shards together stay within it.")
    items_per_batch: int = Field(20, ge=1, le=1000, description="Records per synchronous batch (ItemBatcher).")
    record_concurrency: int = Field(4, ge=1, le=64,
                                    description="Converse calls one synchronous batch makes at the same time.")
    max_attempts: int = Field(4, ge=1, le=20,
                              description="Attempts per record on throttling and model timeouts (backoff, jitter).")
    batch_retries: int = Field(3, ge=1, le=10,
                               description="Step Functions retries of a synchronous batch that stays throttled.")
    tolerated_failure_percentage: float = Field(5.0, ge=0, le=100,
                                                description="Share of failed Map children a run tolerates.")
    reconcile_interval_minutes: int = Field(15, ge=5, le=60,
                                            description="How often the reconciler finishes missed completions and "
                                                        "heartbeats waiting shards.")
    ledger_retention_days: int = Field(90, ge=1, le=3650,
                                       description="How long the recordId ledger remembers a record (TTL); longer "
                                                   "than a run may last plus the 14 days it may be redriven in.")
    corpus_retention_days: RetentionDays = Field(
        90, description="Days a corpus is kept after its upload (1..36500; longer than a run plus its redrive "
                        "window, see intermediateRetentionDays), or \"forever\".")
    result_retention_days: RetentionDays = Field(
        365, description="Days a run's results and manifest are kept after they are written (1..36500; longer than "
                         "a run plus its redrive window), or \"forever\".")
    intermediate_retention_days: int = Field(
        31, ge=1, le=3650,
        description="Days a run's shards, Bedrock job output and Map result files are kept: longer than a run may "
                    "last (2 x (jobTimeoutHours + 24) h) plus the 14 days it may be redriven in; 31 covers any "
                    "jobTimeoutHours.")
    noncurrent_version_days: int = Field(
        defaults.S3_NONCURRENT_VERSION_DAYS, ge=1, le=defaults.S3_MAX_NONCURRENT_VERSION_DAYS,
        description="Days an overwritten, deleted or expired object of the input and output buckets stays "
                    "recoverable as a noncurrent version (incomplete uploads are aborted after 1 day).")
    job_output_kms_key_arn: str | None = Field(
        None, pattern=KMS_KEY_ARN_PATTERN,
        description="ARN of a customer-managed KMS key (same region) Bedrock encrypts each job's output with "
                    "(s3EncryptionKeyId); the batch role may generate data keys with it and the completion handler "
                    "decrypt with it, both only through S3. Its key policy must let the account's IAM policies "
                    "grant its use.")
    job_vpc: BatchJobVpc | None = Field(
        None, description="Run the batch jobs in these subnets and security groups (vpcConfig); the batch role may "
                          "create and delete the jobs' network interfaces there. The subnets need a route to S3 "
                          "(a gateway endpoint).")
    token_prices: TokenPrices | None = Field(
        None, description="The model's on-demand token prices, from which each run's estimated cost (at batch and "
                          "on-demand prices) is reported in its manifest and BatchRunCompleted; omit to use the "
                          "built-in prices of the stack's region and model (the cost estimate's price table, "
                          "offline/cost/prices.yaml); without either, runs report tokens and no cost.")
    result_source: str = Field("ai-pipelines.batch-inference", pattern=EVENT_SOURCE_PATTERN,
                               description="Source of the BatchRunCompleted events on the result bus.")
    sharder_memory_mb: int = Field(2048, ge=512, le=10240,
                                   description="Sharder memory in MB (its CPU share follows it).")
    failure_lane: QueueSettings = Field(default_factory=lambda: QueueSettings(retention_seconds=7 * 24 * 3600),
                                        description="The failure lane holding records that could not be processed.")
    completion: WorkerSettings = Field(
        default_factory=lambda: WorkerSettings(timeout_seconds=900, memory_mb=3008, reserved_concurrency=5,
                                               batch_size=1, batching_window_seconds=0, max_concurrency=None),
        description="The completion handler: one job's output per invocation.")

    @property
    def reconcile_lookback_hours(self) -> int:
        """How far back the reconciler lists jobs and runs: twice the longest a job may wait and run."""
        return 2 * (self.job_timeout_hours + JOB_QUEUE_ALLOWANCE_HOURS)

    @model_validator(mode="after")
    def _coherent(self) -> BatchInferenceSettings:
        remembered = self.ledger_retention_days * 24
        # A record is claimed while its run runs (up to the look-back, twice a job's wait and run) and the run may be
        # redriven up to 14 days after it stopped: the ledger must remember the record for both, one after the other.
        needed = REDRIVE_PERIOD_HOURS + self.reconcile_lookback_hours
        if remembered <= needed:
            raise ValueError(f"ledgerRetentionDays {self.ledger_retention_days} must be longer than a run may last "
                             f"(the reconciler's look-back, {self.reconcile_lookback_hours} h = 2 x (jobTimeoutHours "
                             f"{self.job_timeout_hours} + {JOB_QUEUE_ALLOWANCE_HOURS})) plus the "
                             f"{REDRIVE_PERIOD_DAYS} days in which it can be redriven, {needed} h in all: a "
                             "record or run ending the ledger had forgotten would be processed or reported again")
        # A redriven run reads its shards, job output and Map results again, and may shard its corpus again.
        for key, value in (("intermediateRetentionDays", self.intermediate_retention_days),
                           ("corpusRetentionDays", self.corpus_retention_days),
                           ("resultRetentionDays", self.result_retention_days)):
            days = retention_days(value)
            if days is not None and days * 24 <= needed:
                raise ValueError(f"{key} {days} must be longer than a run may last ({self.reconcile_lookback_hours} "
                                 f"h = 2 x (jobTimeoutHours {self.job_timeout_hours} + {JOB_QUEUE_ALLOWANCE_HOURS})) "
                                 f"plus the {REDRIVE_PERIOD_DAYS} days in which it can be redriven, {needed} h "
                                 f"in all (at least {needed // 24 + 1} days): a redriven run would miss what it reads")
        if _overlap(self.corpus_prefix, SHARD_PREFIX):
            raise ValueError(f"corpusPrefix {self.corpus_prefix} overlaps the shard prefix {SHARD_PREFIX}: corpora "
                             "would expire with the shards")
        base = self.model.model_id
        if base.startswith(_GEOGRAPHIES):
            base = base.split(".", 1)[1]
        if self.request_format == "native" and not base.startswith(_BATCH_MODEL_FAMILIES):
            raise ValueError(f"model.modelId {self.model.model_id}: requestFormat native builds the native request of "
                             f"{' and '.join(f.rstrip('.') for f in _BATCH_MODEL_FAMILIES)} models only; use "
                             "requestFormat converse")
        if self.max_records_per_job < 2 * self.min_records_per_job - 1:
            raise ValueError(f"maxRecordsPerJob {self.max_records_per_job} is below 2 x minRecordsPerJob - 1 = "
                             f"{2 * self.min_records_per_job - 1}: a short tail could not join the shard before it")
        if self.text_field == self.id_field:
            raise ValueError(f"textField and idField are both {self.text_field!r}: a record's id and its text must be "
                             "different fields")
        room = 2 * self.min_records_per_job * self.max_record_bytes
        if self.max_file_bytes < room:
            raise ValueError(f"maxFileBytes {self.max_file_bytes} is below 2 x minRecordsPerJob x maxRecordBytes = "
                             f"{room}: a shard could not hold its minimum plus a merged tail")
        rounds = -(-self.items_per_batch // self.record_concurrency)
        timeout = self.model.request_timeout_seconds
        pauses = backoff_pauses_seconds(self.max_attempts)
        budget = rounds * worst_record_seconds(self.max_attempts, timeout)
        if budget > SYNC_WORKER_BUDGET_SECONDS:
            raise ValueError(f"itemsPerBatch {self.items_per_batch} / recordConcurrency {self.record_concurrency} = "
                             f"{rounds} round(s) of up to (maxAttempts {self.max_attempts} x "
                             f"model.requestTimeoutSeconds {timeout} s + {pauses} s of backoff) = {budget} s exceeds "
                             f"the worker's {SYNC_WORKER_BUDGET_SECONDS} s ({SYNC_WORKER_TIMEOUT_SECONDS} s timeout "
                             f"less {SYNC_WORKER_SETTLE_SECONDS} s to settle): lower itemsPerBatch, maxAttempts or "
                             "model.requestTimeoutSeconds, or raise recordConcurrency")
        # The synchronous Map cuts its batches at itemsPerBatch items or SYNC_BATCH_MAX_INPUT_BYTES bytes, whichever
        # comes first; a single item larger than that would fail the whole Map Run.
        if self.mode != "batch" and self.max_record_bytes > SYNC_BATCH_MAX_INPUT_BYTES:
            raise ValueError(f"maxRecordBytes {self.max_record_bytes} exceeds the {SYNC_BATCH_MAX_INPUT_BYTES} bytes a "
                             f"synchronous batch may hold in mode {self.mode} (Step Functions' "
                             f"{STEP_FUNCTIONS_PAYLOAD_BYTES}-byte payload less {SYNC_BATCH_ENVELOPE_BYTES} for the "
                             f"batch's envelope): lower maxRecordBytes to at most {SYNC_BATCH_MAX_INPUT_BYTES}, or "
                             "use mode batch")
        if self.completion.batch_size != 1:
            raise ValueError(f"completion.batchSize {self.completion.batch_size} must be 1: one job's output fills "
                             "an invocation")
        return self


    def prices_in(self, region: str) -> TokenPrices | None:
        """The token prices runs are costed at in `region`: the configured ones, else the built-in ones of the model
        (an inference profile is priced as its model, in the region the request is made from), else none."""
        if self.token_prices is not None:
            return self.token_prices
        known = TOKEN_PRICES_USD_PER_MILLION.get(region, {}).get(self.model.model_id)
        if known is None:
            return None
        return TokenPrices(input_per_million_tokens=known[0], output_per_million_tokens=known[1],
                           batch_discount=BATCH_PRICE_FACTOR)


# On-demand token prices, USD per million (input, output) tokens, by region and model id: the cost estimate's figures
# (offline/cost/prices.yaml, dated there; a test keeps the two equal). Batch inference costs BATCH_PRICE_FACTOR of them.
TOKEN_PRICES_USD_PER_MILLION: dict[str, dict[str, tuple[float, float]]] = {
    "us-east-1": {"anthropic.claude-3-haiku-20240307-v1:0": (0.25, 1.25),
                  "anthropic.claude-3-5-sonnet-20240620-v1:0": (3.00, 15.00),
                  "amazon.nova-lite-v1:0": (0.06, 0.24),
                  "amazon.nova-micro-v1:0": (0.035, 0.14)},
    "eu-west-1": {"anthropic.claude-3-haiku-20240307-v1:0": (0.25, 1.25)},
}

# The input bucket's key prefix of shards (the pipeline's SHARD_PREFIX), which expire with intermediate objects.
SHARD_PREFIX = "shards/"


def _overlap(prefix: str, other: str) -> bool:
    return prefix.startswith(other) or other.startswith(prefix)


# How long a job may sit in Bedrock's queue before it runs, on top of its own timeout.
JOB_QUEUE_ALLOWANCE_HOURS = 24
# Step Functions redrives an execution that ended in the last 14 days.
REDRIVE_PERIOD_DAYS = 14
REDRIVE_PERIOD_HOURS = REDRIVE_PERIOD_DAYS * 24

# The sync worker's timeout, and its Task's TimeoutSeconds: Lambda's 15 minutes (the component's
# LONG_TASK_SECONDS). A worker that reaches it fails as Sandbox.Timedout / States.Timeout, which the Task does not
# retry as throttling, so the child fails and counts against the tolerated failure percentage.
SYNC_WORKER_TIMEOUT_SECONDS = 900
# Kept out of the model calls' budget: the cold start and the ledger claims before the calls, and the settlement
# after them (ledger, failure lane, results object).
SYNC_WORKER_SETTLE_SECONDS = 60
SYNC_WORKER_BUDGET_SECONDS = SYNC_WORKER_TIMEOUT_SECONDS - SYNC_WORKER_SETTLE_SECONDS
# The worker's backoff (batch_inference.backoff.with_backoff as the worker calls it): after failed attempt n it
# sleeps up to min(cap, base * 2**n) seconds (full jitter: the worst case is the cap).
BACKOFF_BASE_SECONDS = 1
BACKOFF_CAP_SECONDS = 20

# Step Functions' limit on a child execution's input and on a Task's payload (UTF-8 bytes). A synchronous batch is
# {"Items": [<shard line>, ...], "BatchInput": {"runId": ...}}, and the Task adds retryCount: the items are bounded
# by the ItemBatcher; the envelope (keys, an 80-character runId, retryCount) takes the rest.
STEP_FUNCTIONS_PAYLOAD_BYTES = 256 * 1024
SYNC_BATCH_ENVELOPE_BYTES = 1024
# What a synchronous batch's items may take: the synchronous Map's ItemBatcher MaxInputBytesPerBatch.
SYNC_BATCH_MAX_INPUT_BYTES = STEP_FUNCTIONS_PAYLOAD_BYTES - SYNC_BATCH_ENVELOPE_BYTES


def backoff_pauses_seconds(attempts: int) -> int:
    """The longest the worker's backoff sleeps between `attempts` attempts of one record."""
    return sum(min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** n) for n in range(1, attempts))


def worst_record_seconds(attempts: int, request_timeout_seconds: int) -> int:
    """The longest one record can take: every attempt runs to the request timeout, every backoff to its cap."""
    return attempts * request_timeout_seconds + backoff_pauses_seconds(attempts)
