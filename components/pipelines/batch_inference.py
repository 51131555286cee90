"""Large-scale batch generative AI: S3 JSONL corpus -> Step Functions (Distributed Map) -> Bedrock batch jobs
(mode A) or synchronous Converse fan-out (mode B) -> S3 results + manifest, failure lane, completion event.

A run is one execution of the state machine, started with ``{"corpusKey": "corpus/<file>.jsonl"}``; its name is the
run id. The sharder streams the corpus into shards within Bedrock's per-job bounds, and the run goes one of two
ways:

* mode A: a Distributed Map over the shard list, MaxConcurrency = the concurrent-jobs quota; each child submits
  one ``CreateModelInvocationJob`` (job name and clientRequestToken from run id + shard id) and waits on a task
  token. Bedrock's ``Batch Inference Job State Change`` event reaches the completion queue through a rule on the
  default bus (retry policy, its own DLQ); the completion handler joins the output on recordId, settles each
  record through the ledger and resumes the child. A scheduled reconciler finishes jobs whose event was missed
  and heartbeats the waiting children.
* mode B: a Distributed Map reading the prepared JSONL (ItemReader, ItemBatcher), MaxConcurrency = the on-demand
  concurrency; the worker calls Converse per record with backoff and jitter, Step Functions' Retry is the second
  layer.

Every record's downstream effect is gated by a conditional write in the recordId ledger; records that cannot be
processed go to the failure lane (SQS, DLQ, alarms). The finalizer writes the run's manifest and publishes
``BatchRunCompleted`` on the result bus.

The Bedrock batch service role is trusted by bedrock.amazonaws.com for this account's model-invocation jobs only,
reads only the shard prefix, writes only the Bedrock output prefix and invokes only the configured model; the
submitter may pass that role, and only to Bedrock.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pulumi
import pulumi_aws as aws

from components import defaults
from components.blocks.access_logs import AccessLogs
from components.blocks.alarms import ErrorRate, custom_metric, notifying_alarm
from components.blocks.bucket import (
    READ_OBJECTS,
    WRITE_OBJECTS,
    WRITE_OBJECTS_IN_PARTS,
    DataBucket,
    Expiry,
    Retention,
    key_to_use,
)
from components.blocks.dashboard import PipelineDashboard, Widget, alarm_widget, metrics_widget
from components.blocks.event_bus import EVENTS_SERVICE, EventBus, RuleToQueue, TargetRetry
from components.blocks.function import TaskFunction
from components.blocks.iam import AwsEnv, PolicyDocument, Statement, service_trust_policy
from components.blocks.key import StackKey, key_use
from components.blocks.metrics import Metric
from components.blocks.naming import Naming
from components.blocks.packaging import FunctionCode
from components.blocks.queue import QueueProducer, QueueWithDlq, key_to_send
from components.blocks.schedule import invoke_on_schedule
from components.blocks.state_machine import MACHINE_CONTEXT, StateMachine
from components.blocks.table import DataTable
from components.blocks.worker import QueueWorker
from components.config import BatchInferenceSettings, QueueSettings, WorkerSettings
from components.config.batch_inference import JOB_QUEUE_ALLOWANCE_HOURS, SYNC_BATCH_MAX_INPUT_BYTES
from components.config.batch_inference import SHARD_PREFIX as CONFIG_SHARD_PREFIX
from components.config.sections import retention_days
from components.pipelines.batch_inference_asl import AslParameters, definition
from components.pipelines.event_processing import bedrock_metric

HANDLER_PACKAGE = "batch_inference"
BEDROCK_SERVICE = "bedrock.amazonaws.com"
JOB_STATE_CHANGE = "Batch Inference Job State Change"
# Terminal job statuses: the Completed, Failed and Stopped, plus PartiallyCompleted and Expired, which end
# a job just as surely (without them a partially completed or expired job would wait for the reconciler).
TERMINAL_STATUSES = ("Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired")
COMPLETED_DETAIL_TYPE = "BatchRunCompleted"
# The tag the submitter puts on every job it creates (value: the job name prefix, one per stack); the finalizer may
# stop only jobs that carry it. The handlers' `jobs.OWNER_TAG` is the same key (the submit tests hold them equal).
JOB_OWNER_TAG = "ai-pipelines:batch-job-owner"

# Key layout. Input bucket: <corpusPrefix> (corpora), shards/<runId>/ (shards and the shard list).
# Output bucket: bedrock-output/<runId>/<shard>/ (Bedrock's), results/<runId>/ (joined results), runs/ (manifests
# and the Maps' ResultWriter files).
SHARD_PREFIX = CONFIG_SHARD_PREFIX
BEDROCK_OUTPUT_PREFIX = "bedrock-output/"
RESULTS_PREFIX = "results/"
RUNS_PREFIX = "runs/"
MAP_RESULTS_PREFIX = "runs/map-results"
LEDGER_KEY, JOBS_KEY, EXPIRY_ATTRIBUTE = "recordId", "jobKey", "expiresAt"

SUBMITTER_TIMEOUT_SECONDS = 120
RECONCILER_TIMEOUT_SECONDS = 300
LONG_TASK_SECONDS = 900
FAILURE_LANE_VISIBILITY_SECONDS = 300
# The failure lane is drained by people and replay tooling: page when a record waits there for a day.
FAILURE_LANE_AGE_ALARM_SECONDS = 24 * 3600
STATE_MACHINE_PURPOSE = "runs"
EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
UNSUCCESSFUL_RUN_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
# Reporting a run's ending is a manifest, a claim and one event: a small, short function.
RUN_ENDED_WORKER = WorkerSettings(timeout_seconds=60, memory_mb=256, reserved_concurrency=2, batch_size=10)
SYNC_WORKER_ERROR_RATE = ErrorRate(defaults.ERROR_RATE_PERCENT, defaults.ERROR_RATE_MIN_INVOCATIONS)
# One reconciler at a time: the schedule's ticks never overlap (its timeout is at most the shortest interval), and a
# second reconciler would only repeat the first's work. A tick throttled by it waits in Lambda's asynchronous queue.
RECONCILER_CONCURRENCY = 1
# A waiting shard's heartbeat window: three reconciler intervals, so one late tick is not a lost job.
HEARTBEAT_INTERVALS = 3


class BatchInference(pulumi.ComponentResource):
    """The whole pipeline for one stack.

    >>> BatchInference(naming.child("batchinf"), env, settings, code=lambda module: function_code(
    ...     "batch_inference", module=module), alarm_topic_arn=topic.arn, log_retention_days=30,
    ...     protect_data=False)  # doctest: +SKIP
    """

    def __init__(self, naming: Naming, env: AwsEnv, settings: BatchInferenceSettings, *, code: Any,
                 alarm_topic_arn: pulumi.Input[str], log_retention_days: int, protect_data: bool,
                 key: StackKey | None = None, access_logs: AccessLogs | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:pipelines:BatchInference", naming.pipeline, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.settings = settings
        model = settings.model
        self.job_name_prefix = naming.name("job", max_length=34)
        self.key = key

        self.input_bucket = DataBucket(naming, env, "input", retention=input_retention(settings),
                                       protect=protect_data, key=key, access_logs=access_logs, opts=child)
        self.output_bucket = DataBucket(naming, env, "output", retention=output_retention(settings),
                                        protect=protect_data, key=key, access_logs=access_logs, opts=child)
        input_name, output_name = self.input_bucket.bucket_name, self.output_bucket.bucket_name
        self.ledger = DataTable(naming, env, "ledger", purpose="ledger", hash_key=LEDGER_KEY,
                                retention_attribute=EXPIRY_ATTRIBUTE, protect=protect_data, key=key, opts=child)
        self.jobs = DataTable(naming, env, "jobs", purpose="ledger", hash_key=JOBS_KEY,
                              retention_attribute=EXPIRY_ATTRIBUTE, protect=protect_data, key=key, opts=child)
        self.failure_lane = QueueWithDlq(
            naming, env, "failures", settings=settings.failure_lane,
            visibility_timeout_seconds=FAILURE_LANE_VISIBILITY_SECONDS, alarm_topic_arn=alarm_topic_arn,
            age_alarm_seconds=FAILURE_LANE_AGE_ALARM_SECONDS, key=key, opts=child)
        self.result_bus = EventBus(naming, env, "results", description=f"{COMPLETED_DETAIL_TYPE} events", opts=child)

        completion_rule_arn = RuleToQueue.rule_arn(naming, env, "job-events", None)
        self.completion_queue = QueueWithDlq(
            naming, env, "completions", settings=QueueSettings(),
            visibility_timeout_seconds=settings.completion.visibility_timeout_seconds,
            alarm_topic_arn=alarm_topic_arn,
            producers=[QueueProducer("JobEventRuleSends", EVENTS_SERVICE, completion_rule_arn)], key=key,
            opts=child)
        self.job_events = RuleToQueue(
            naming, env, "job-events", bus=None,
            event_pattern={"source": ["aws.bedrock"], "detail-type": [JOB_STATE_CHANGE],
                           "detail": {"status": list(TERMINAL_STATUSES)}},
            queue=self.completion_queue, retry=TargetRetry(), alarm_topic_arn=alarm_topic_arn,
            description="Bedrock batch jobs that finished, to the completion queue", opts=child)
        # Runs that end without reaching Finalize (failed, timed out, aborted): Step Functions' own event, so every
        # such ending is reported and nothing in the definition has to catch (a redrive restarts where it failed).
        self.state_machine_arn = env.state_machine(naming.name(STATE_MACHINE_PURPOSE, max_length=80))
        run_endings_rule_arn = RuleToQueue.rule_arn(naming, env, "run-endings", None)
        self.run_endings_queue = QueueWithDlq(
            naming, env, "run-endings", settings=QueueSettings(),
            visibility_timeout_seconds=6 * RUN_ENDED_WORKER.timeout_seconds, alarm_topic_arn=alarm_topic_arn,
            producers=[QueueProducer("RunEndingRuleSends", EVENTS_SERVICE, run_endings_rule_arn)], key=key,
            opts=child)
        self.run_endings = RuleToQueue(
            naming, env, "run-endings", bus=None,
            event_pattern={"source": ["aws.states"], "detail-type": [EXECUTION_STATUS_CHANGE],
                           "detail": {"status": list(UNSUCCESSFUL_RUN_STATUSES),
                                      "stateMachineArn": [self.state_machine_arn]}},
            queue=self.run_endings_queue, retry=TargetRetry(), alarm_topic_arn=alarm_topic_arn,
            description="Runs that ended without succeeding, to the run-endings queue", opts=child)

        self.batch_role = self._batch_role(naming, env)
        self.batch_role_arn = env.iam_role(self.batch_role.name)

        objects = env.s3_objects
        shards = objects(input_name, SHARD_PREFIX)
        storage: dict[str, pulumi.Input[str]] = {
            "INPUT_BUCKET": input_name, "OUTPUT_BUCKET": output_name, "SHARD_PREFIX": SHARD_PREFIX,
            "RESULTS_PREFIX": RESULTS_PREFIX}
        records: dict[str, pulumi.Input[str]] = {
            "LEDGER_TABLE": self.ledger.table_name, "FAILURE_LANE_URL": self.failure_lane.url,
            "LEDGER_TTL_SECONDS": str(settings.ledger_retention_days * 86400)}
        powertools: dict[str, pulumi.Input[str]] = {"POWERTOOLS_METRICS_NAMESPACE": naming.project, "LOG_LEVEL": "INFO"}
        prompt = {"MODEL_ID": model.invoked_id, "PROMPT_TEMPLATE": model.prompt,
                  "LABELS": json.dumps(list(model.labels)), "MAX_OUTPUT_TOKENS": str(model.max_output_tokens),
                  "TEMPERATURE": str(model.temperature), "REQUEST_FORMAT": settings.request_format}
        claim = self.ledger.statements_to_write("ClaimRecordsInTheLedger", ["dynamodb:UpdateItem"])
        to_lane = self.failure_lane.statements_to_send("SendToTheFailureLane")
        input_arn, output_arn = self.input_bucket.arn_value, self.output_bucket.arn_value
        machine_arn = env.arn("states", f"stateMachine:{naming.name(STATE_MACHINE_PURPOSE, max_length=80)}")

        def objects_key(sid: str, actions: tuple[str, ...], *bucket_arns: str) -> list[Statement]:
            return key_to_use(key, sid, actions, list(bucket_arns))

        # Step Functions encrypts what a task sends back (SendTaskSuccess, SendTaskFailure) and decrypts what
        # DescribeExecution returns with the machine's key (AWS: "Data at rest encryption in Step Functions").
        resume_key = key_use(key, "EncryptTaskResults", ["kms:GenerateDataKey"], via="states",
                             context={MACHINE_CONTEXT: [machine_arn]})

        def function(purpose: str, module: str, **kwargs: Any) -> TaskFunction:
            environment = {**kwargs.pop("environment"), **powertools,
                           "POWERTOOLS_SERVICE_NAME": naming.name(purpose)}
            return TaskFunction(naming, env, purpose, code=code(module), alarm_topic_arn=alarm_topic_arn,
                                log_retention_days=log_retention_days, environment=environment, key=key,
                                opts=child, **kwargs)

        self.sharder = function(
            "sharder", "sharder", timeout_seconds=LONG_TASK_SECONDS, memory_mb=settings.sharder_memory_mb,
            reserved_concurrency=settings.concurrent_runs,  # one per run: a run shards its corpus once
            # Two shards are spooled to /tmp at once (the last full one waits in case the tail joins it).
            ephemeral_storage_mb=min(10240, 2 * (settings.max_file_bytes >> 20) + 512),
            statements=[
                Statement("ReadCorpora", ["s3:GetObject"], [objects(input_name, settings.corpus_prefix)]),
                Statement("WriteShards", ["s3:PutObject"], [shards]),
                *objects_key("DecryptCorporaEncryptShards", READ_OBJECTS + WRITE_OBJECTS, input_arn),
                *claim, *to_lane,
            ],
            environment={**storage, **records, **prompt, "MODE": settings.mode, "TEXT_FIELD": settings.text_field,
                         "ID_FIELD": settings.id_field, "MIN_RECORDS_PER_JOB": str(settings.min_records_per_job),
                         "MAX_RECORDS_PER_JOB": str(settings.max_records_per_job),
                         "MAX_FILE_BYTES": str(settings.max_file_bytes),
                         "MAX_RECORD_BYTES": str(settings.max_record_bytes),
                         "MAX_INPUT_CHARS": str(model.max_input_chars),
                         "RUN_DEADLINE_HOURS": str(settings.run_deadline_hours or 0)})
        self.submitter = function(
            "submitter", "submitter", timeout_seconds=SUBMITTER_TIMEOUT_SECONDS, memory_mb=256,
            # No more submissions at once than jobs the quota lets run; a throttled one is retried by its Task.
            reserved_concurrency=settings.concurrent_jobs,
            statements=[
                # The job's modelId is the inference profile when one is configured, so the profile is named too.
                # AWS's service authorization reference (the IAM database the policy pack checks against) authorizes
                # CreateModelInvocationJob on the job and the foundation model, not on an inference profile: under a
                # profile, the model in each region it routes to. The batch role invokes the profile itself.
                # Every job it creates carries the owner tag, which the finalizer's stop requires.
                Statement("CreateJobsOfTheConfiguredModel", ["bedrock:CreateModelInvocationJob"],
                          [env.model_invocation_job("*"), *self._foundation_models(env)],
                          conditions={"StringEquals": {f"aws:RequestTag/{JOB_OWNER_TAG}": self.job_name_prefix}}),
                # Listing has no resource-level permission; it finds a job whose name exists already.
                Statement("FindExistingJobs", ["bedrock:ListModelInvocationJobs"], ["*"]),
                Statement("PassOnlyTheBatchRoleToBedrock", ["iam:PassRole"], [self.batch_role_arn],
                          conditions={"StringEquals": {"iam:PassedToService": BEDROCK_SERVICE}}),
                *self.jobs.statements_to_write("RememberTaskTokens", ["dynamodb:UpdateItem"]),
                # Task tokens carry no resource: SendTask* accept only "*" (AWS's IAM reference).
                Statement("ResumeSettledShards", ["states:SendTaskFailure", "states:SendTaskSuccess"], ["*"]),
                *resume_key,
            ],
            environment={"JOBS_TABLE": self.jobs.table_name, "MODEL_ID": model.invoked_id,
                         "LEDGER_TTL_SECONDS": records["LEDGER_TTL_SECONDS"],
                         "BATCH_ROLE_ARN": self.batch_role_arn, "JOB_NAME_PREFIX": self.job_name_prefix,
                         "JOB_TIMEOUT_HOURS": str(settings.job_timeout_hours), "OUTPUT_BUCKET": output_name,
                         "BEDROCK_OUTPUT_PREFIX": BEDROCK_OUTPUT_PREFIX, "REQUEST_FORMAT": settings.request_format,
                         # The run id is added per job; the stack's tags say where every job comes from.
                         "JOB_TAGS": json.dumps(naming.tags, sort_keys=True),
                         "DEADLINE_JOB_HOURS": str(settings.deadline_job_hours),
                         # The configured job-output key, else the stack's key (by its alias ARN, known at preview).
                         "JOB_OUTPUT_KMS_KEY": settings.job_output_kms_key_arn or (
                             key.alias_arn if key is not None else ""),
                         "JOB_VPC": json.dumps({"subnetIds": list(settings.job_vpc.subnet_ids),
                                                "securityGroupIds": list(settings.job_vpc.security_group_ids)})
                         if settings.job_vpc else ""})
        # The sync worker's errors page on their rate: a run fans out into thousands of its invocations, each
        # failed one retried by Step Functions (and a record that keeps failing goes to the failure lane), so one is
        # noise. Every other function here runs a few times a run or a tick, and any error of theirs pages.
        self.sync_worker = function(
            "sync-worker", "sync_worker", timeout_seconds=LONG_TASK_SECONDS, memory_mb=512,
            reserved_concurrency=settings.on_demand_concurrency, error_rate=SYNC_WORKER_ERROR_RATE,
            statements=[
                Statement("InvokeTheConfiguredModel", ["bedrock:InvokeModel"], self._model_resources(env)),
                *claim, *to_lane,
                Statement("WriteResults", ["s3:PutObject"], [objects(output_name, RESULTS_PREFIX)]),
                *objects_key("EncryptResults", WRITE_OBJECTS, output_arn),
            ],
            environment={**storage, **records, "MODEL_ID": model.invoked_id,
                         "MODEL_TIMEOUT_SECONDS": str(model.request_timeout_seconds),
                         "RECORD_CONCURRENCY": str(settings.record_concurrency),
                         "MAX_ATTEMPTS": str(settings.max_attempts), "BATCH_RETRIES": str(settings.batch_retries)})
        self.completion = QueueWorker(
            naming, env, "completion", queue=self.completion_queue, code=code("completion"),
            settings=settings.completion, alarm_topic_arn=alarm_topic_arn, log_retention_days=log_retention_days,
            statements=[
                Statement("ReadJobs", ["bedrock:GetModelInvocationJob"], [env.model_invocation_job("*")]),
                Statement("ReadShardsAndJobOutput", ["s3:GetObject"],
                          [shards, objects(output_name, BEDROCK_OUTPUT_PREFIX)]),
                # Without it S3 answers a missing key with 403, not 404: a job output someone deleted would fail the
                # message until it is dead-lettered instead of being read as empty. Only the job-output prefix: a
                # missing shard stays an error (AccessDenied), which is retried and then dead-lettered.
                Statement("TellMissingJobOutputFromDenied", ["s3:ListBucket"], [self.output_bucket.arn],
                          conditions={"StringLike": {"s3:prefix": [f"{BEDROCK_OUTPUT_PREFIX}*"]}}),
                Statement("WriteResults", ["s3:PutObject"], [objects(output_name, RESULTS_PREFIX)]),
                *objects_key("DecryptShards", READ_OBJECTS, input_arn),
                *objects_key("DecryptJobOutputEncryptResults", READ_OBJECTS + WRITE_OBJECTS, output_arn),
                *claim, *to_lane,
                *self.jobs.statements_to_write("SettleShards", ["dynamodb:GetItem", "dynamodb:UpdateItem"]),
                *self._job_output_key(env, "ReadEncryptedJobOutput", ["kms:Decrypt"]),
                Statement("ResumeWaitingShards", ["states:SendTaskFailure", "states:SendTaskSuccess"], ["*"]),
                *resume_key,
            ],
            environment={**storage, **records, **powertools, "JOBS_TABLE": self.jobs.table_name,
                         "JOB_NAME_PREFIX": self.job_name_prefix,
                         "POWERTOOLS_SERVICE_NAME": naming.name("completion")},
            key=key, opts=child)
        self.reconciler = function(
            "reconciler", "reconciler", timeout_seconds=RECONCILER_TIMEOUT_SECONDS, memory_mb=256,
            reserved_concurrency=RECONCILER_CONCURRENCY,
            statements=[
                Statement("ListJobs", ["bedrock:ListModelInvocationJobs"], ["*"]),
                *self.jobs.statements_to_write("ReadShards", ["dynamodb:GetItem"]),
                # Missed completions go to the completion queue; a failed scheduled run to its DLQ (Lambda's
                # asynchronous on-failure destination sends with the function's own role).
                Statement("RequeueMissedCompletions", ["sqs:SendMessage"],
                          [self.completion_queue.arn, self.completion_queue.dlq_arn]),
                *key_to_send(key, "RequeueMissedCompletionsEncrypted",
                             [self.completion_queue.arn_value, self.completion_queue.dlq_arn_value]),
                Statement("HeartbeatWaitingShards", ["states:SendTaskHeartbeat"], ["*"]),
                # Run endings whose status-change event was missed: listed, read, and requeued for run-ended.
                Statement("ListRuns", ["states:ListExecutions"], [self.state_machine_arn]),
                Statement("ReadEndedRuns", ["states:DescribeExecution"],
                          [env.state_machine_executions(naming.name(STATE_MACHINE_PURPOSE, max_length=80))]),
                *key_use(key, "DecryptEndedRuns", ["kms:Decrypt"], via="states",
                         context={MACHINE_CONTEXT: [machine_arn]}),
                *self.run_endings_queue.statements_to_send("RequeueMissedRunEndings"),
            ],
            environment={"JOBS_TABLE": self.jobs.table_name, "JOB_NAME_PREFIX": self.job_name_prefix,
                         "COMPLETION_QUEUE_URL": self.completion_queue.url,
                         "STATE_MACHINE_ARN": self.state_machine_arn,
                         "RUN_ENDINGS_QUEUE_URL": self.run_endings_queue.url,
                         "RECONCILE_LOOKBACK_HOURS": str(settings.reconcile_lookback_hours)})
        finalizer_environment: dict[str, pulumi.Input[str]] = {
            **storage, **records, "JOBS_TABLE": self.jobs.table_name, "RUNS_PREFIX": RUNS_PREFIX,
            "JOB_NAME_PREFIX": self.job_name_prefix, "RESULT_BUS_NAME": self.result_bus.bus_name,
            "RESULT_SOURCE": settings.result_source, "TOKEN_PRICES": token_prices_variable(settings, env.region)}
        self.finalizer = function(
            "finalizer", "finalizer", timeout_seconds=LONG_TASK_SECONDS, memory_mb=1024,
            reserved_concurrency=settings.concurrent_runs,  # one per run: a run ends once
            statements=[
                Statement("ReadMapResultsAndShards", ["s3:GetObject"],
                          [objects(output_name, f"{MAP_RESULTS_PREFIX}/"), shards]),
                Statement("WriteManifestsAndKeptResults", ["s3:PutObject"],
                          [objects(output_name, RUNS_PREFIX), objects(output_name, RESULTS_PREFIX)]),
                *objects_key("DecryptShards", READ_OBJECTS, input_arn),
                *objects_key("DecryptMapResultsEncryptManifests", READ_OBJECTS + WRITE_OBJECTS, output_arn),
                *claim, *to_lane,
                # The publication claim, and the shard of a child that failed for good: settled under its lease.
                *self.jobs.statements_to_write("ClaimThePublicationAndFailedShards",
                                               ["dynamodb:GetItem", "dynamodb:UpdateItem"]),
                # A failed child's job that still runs would be settled by nobody.
                # Only this pipeline's jobs: a job's ARN holds a random id, not its name, so the tag tells them apart.
                Statement("StopAbandonedJobs", ["bedrock:StopModelInvocationJob"], [env.model_invocation_job("*")],
                          conditions={"StringEquals": {f"aws:ResourceTag/{JOB_OWNER_TAG}": self.job_name_prefix}}),
                self.result_bus.statement_to_put_events("PublishRunCompleted"),
            ],
            environment=finalizer_environment)

        self.run_ended = QueueWorker(
            naming, env, "run-ended", queue=self.run_endings_queue, code=code("run_ended"),
            settings=RUN_ENDED_WORKER, alarm_topic_arn=alarm_topic_arn, log_retention_days=log_retention_days,
            statements=[
                Statement("WriteManifests", ["s3:PutObject"], [objects(output_name, RUNS_PREFIX)]),
                *objects_key("EncryptManifests", WRITE_OBJECTS, output_arn),
                *self.jobs.statements_to_write("ClaimThePublication", ["dynamodb:GetItem", "dynamodb:UpdateItem"]),
                self.result_bus.statement_to_put_events("PublishRunEnded"),
            ],
            environment={**finalizer_environment, **powertools, "POWERTOOLS_SERVICE_NAME": naming.name("run-ended")},
            key=key, opts=child)

        self.state_machine = StateMachine(
            naming, env, STATE_MACHINE_PURPOSE, definition=definition(self.asl_parameters(output_name)),
            statements=[
                Statement("InvokeThePipelineFunctions", ["lambda:InvokeFunction"],
                          [self.sharder.arn, self.submitter.arn, self.sync_worker.arn, self.finalizer.arn]),
                Statement("ReadShardListsAndPreparedRecords", ["s3:GetObject"], [shards]),
                # A redriven run restarts its failed Map Run's failed children (AWS: "IAM permission to redrive a
                # Map Run").
                Statement("RedriveOwnMapRuns", ["states:RedriveExecution"],
                          [env.map_run_executions(naming.name(STATE_MACHINE_PURPOSE, max_length=80))]),
                Statement("WriteMapResults", ["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
                                              "s3:PutObject"], [objects(output_name, MAP_RESULTS_PREFIX + "/")]),
                *objects_key("DecryptShardLists", READ_OBJECTS, input_arn),
                *objects_key("EncryptMapResults", WRITE_OBJECTS_IN_PARTS, output_arn),
            ],
            alarm_topic_arn=alarm_topic_arn, log_retention_days=log_retention_days, key=key, opts=child)
        # A tick that fails inside the reconciler is retried by Lambda, then lands in the alarmed completion DLQ.
        self.schedule = invoke_on_schedule(
            self, naming, env, "reconcile", function=self.reconciler.function, function_arn=self.reconciler.arn,
            invoked="Reconciler", expression=f"rate({self.settings.reconcile_interval_minutes} minutes)",
            dead_letter_arn=self.completion_queue.dlq_arn, failed_run_max_age_seconds=3600, key=key,
            dead_letter_arn_value=self.completion_queue.dlq_arn_value)
        self.model_throttle_alarm = notifying_alarm(
            naming, "model-throttles", watch=bedrock_metric(model.invoked_id, "InvocationThrottles"),
            topic_arn=alarm_topic_arn, threshold=model.throttle_alarm_threshold, title="model throttles",
            description=f"Bedrock throttled {model.invoked_id} more than {model.throttle_alarm_threshold} times in "
                        "a minute: onDemandConcurrency exceeds the model's on-demand quota", parent=self)
        # Bedrock's output disagreeing with its shard or its manifest (counts, unknown or unreadable lines): every
        # record is still settled on recordId, but someone should look at the job.
        self.output_mismatch_alarm = notifying_alarm(
            naming, "output-mismatches", watch=custom_metric(naming, "completion", "OutputMismatches"),
            topic_arn=alarm_topic_arn, threshold=0, title="job outputs that disagreed with their shard",
            description="A batch job's output disagreed with its shard or its manifest.json.out; "
                        "see the completion handler's log", parent=self)
        self.dashboard = PipelineDashboard(naming, env, sections=self._dashboard(naming), opts=child)
        self.register_outputs({"stateMachineArn": self.state_machine.arn, "inputBucket": input_name,
                               "outputBucket": output_name, "resultBusName": self.result_bus.bus_name,
                               "failureLaneUrl": self.failure_lane.url,
                               "dashboardName": self.dashboard.dashboard_name})

    def _dashboard(self, naming: Naming) -> list[tuple[str, list[Widget]]]:
        """Runs and their Map Runs, records per run and where they ended, jobs, the model, the failure lane, and
        every function and queue."""
        model_id = self.settings.model.invoked_id

        def service(purpose: str, metric: str) -> Metric:
            return custom_metric(naming, purpose, metric)

        machine = self.state_machine
        # A Map Run's metrics carry its own ARN (mapRun:<machine>/<label>:<id>), new with every run: a search (a
        # partial match on the machine's name; no alarm reads it) draws every Map Run of this machine.
        map_runs = Widget("Map Run progress (child executions)", [[{
            "expression": f"SEARCH('{{AWS/States,MapRunArn}} MapRunArn={machine.name}', 'Sum', 60)",
            "label": "", "id": "mapruns"}]])
        runs = [*machine.widgets(), map_runs,
                metrics_widget("records per run", [service("sharder", "CorpusLines"),
                                                   service("sharder", "RecordsSharded"),
                                                   service("sharder", "LinesRejected"),
                                                   service("sharder", "ShardsWritten")]),
                metrics_widget("records settled", [service(fn, f"Records{outcome}")
                                                   for fn in ("completion", "sync-worker")
                                                   for outcome in ("Succeeded", "Failed", "Duplicates")]),
                metrics_widget("batch jobs", [service("submitter", "JobsSubmitted"),
                                              service("submitter", "JobQuotaFull"),
                                              service("submitter", "JobsRejected"),
                                              service("submitter", "ShardsSwitchedToSync"),
                                              service("reconciler", "MissedCompletions"),
                                              service("reconciler", "MissedRunEndings")]),
                alarm_widget(self.output_mismatch_alarm)]
        model = [alarm_widget(self.model_throttle_alarm, extra=[bedrock_metric(model_id, "Invocations")]),
                 metrics_widget("model latency (ms)", [bedrock_metric(model_id, "InvocationLatency", "Average"),
                                                       bedrock_metric(model_id, "InvocationLatency", "p99")])]
        functions = [widget for block in (self.sharder, self.submitter, self.sync_worker, self.completion,
                                          self.reconciler, self.finalizer, self.run_ended)
                     for widget in block.widgets()]
        queues = [*self.completion_queue.widgets(), alarm_widget(self.job_events.undelivered_alarm),
                  *self.run_endings_queue.widgets(), alarm_widget(self.run_endings.undelivered_alarm)]
        return [("Runs", runs), ("Model", model), ("Failure lane", self.failure_lane.widgets()),
                ("Functions", functions), ("Completion and run-ending queues", queues)]

    def asl_parameters(self, output_bucket: pulumi.Input[str]) -> AslParameters:
        settings = self.settings
        return AslParameters(
            sharder_arn=self.sharder.arn, submitter_arn=self.submitter.arn, sync_worker_arn=self.sync_worker.arn,
            finalizer_arn=self.finalizer.arn, output_bucket=output_bucket, map_results_prefix=MAP_RESULTS_PREFIX,
            concurrent_jobs=settings.concurrent_jobs, on_demand_concurrency=settings.on_demand_concurrency,
            items_per_batch=settings.items_per_batch, max_input_bytes_per_batch=SYNC_BATCH_MAX_INPUT_BYTES,
            tolerated_failure_percentage=settings.tolerated_failure_percentage,
            job_wait_seconds=(settings.job_timeout_hours + JOB_QUEUE_ALLOWANCE_HOURS) * 3600,
            heartbeat_seconds=HEARTBEAT_INTERVALS * settings.reconcile_interval_minutes * 60,
            sharder_timeout_seconds=LONG_TASK_SECONDS, sync_timeout_seconds=LONG_TASK_SECONDS,
            finalizer_timeout_seconds=LONG_TASK_SECONDS, batch_retries=settings.batch_retries)

    def _foundation_models(self, env: AwsEnv) -> list[pulumi.Output[str]]:
        """The configured model in this region and every region its inference profile routes to."""
        model = self.settings.model
        regions = sorted({env.region, *model.inference_profile_regions})
        return [dataclasses.replace(env, region=region).foundation_model(model.model_id) for region in regions]

    def _model_resources(self, env: AwsEnv) -> list[pulumi.Output[str]]:
        """What bedrock:InvokeModel may name: the model (in each region of its profile) and the profile itself."""
        model = self.settings.model
        profile = [env.inference_profile(model.inference_profile_id)] if model.inference_profile_id else []
        return [*self._foundation_models(env), *profile]

    def _batch_role(self, naming: Naming, env: AwsEnv) -> aws.iam.Role:
        """The service role Bedrock assumes to run this pipeline's jobs: shards in, output out, this model only."""
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            naming.logical("batch-role"), name=naming.name("batch-role", max_length=64),
            assume_role_policy=service_trust_policy(BEDROCK_SERVICE, env, source_arn=env.model_invocation_job("*")),
            tags=naming.tags, opts=child)
        input_name, output_name = self.input_bucket.bucket_name, self.output_bucket.bucket_name
        # What a job reads and writes in the stack's encrypted buckets: through S3, as the role.
        key_statements = [
            *key_to_use(self.key, "DecryptShards", READ_OBJECTS, [self.input_bucket.arn_value]),
            *key_to_use(self.key, "EncryptJobOutputInTheBucket", WRITE_OBJECTS_IN_PARTS,
                        [self.output_bucket.arn_value])]
        if self.key is not None:
            self.key.admit_roles(env.iam_role(role.name), key_statements)
        aws.iam.RolePolicy(
            naming.logical("batch-role-policy"), name="batch-job-permissions", role=role.name,
            policy=PolicyDocument([
                Statement("ReadShards", ["s3:GetObject"], [env.s3_objects(input_name, SHARD_PREFIX)]),
                Statement("ListShards", ["s3:ListBucket"], [self.input_bucket.arn],
                          conditions={"StringLike": {"s3:prefix": [f"{SHARD_PREFIX}*"]}}),
                Statement("WriteJobOutput", ["s3:PutObject"], [env.s3_objects(output_name, BEDROCK_OUTPUT_PREFIX)]),
                Statement("ListJobOutput", ["s3:ListBucket"], [self.output_bucket.arn],
                          conditions={"StringLike": {"s3:prefix": [f"{BEDROCK_OUTPUT_PREFIX}*"]}}),
                Statement("InvokeTheConfiguredModel", ["bedrock:InvokeModel"], self._model_resources(env)),
                *self._job_output_key(env, "EncryptJobOutput", ["kms:Decrypt", "kms:GenerateDataKey"]),
                *key_statements,
                *self._job_network(env),
            ]).to_json(), opts=child)
        return role

    def _job_output_key(self, env: AwsEnv, sid: str, actions: list[str]) -> list[Statement]:
        """Use of the customer-managed key of the job output, only through S3 in this region (none without one)."""
        key = self.settings.job_output_kms_key_arn
        if key is None:
            return []
        return [Statement(sid, actions, [key],
                          conditions={"StringEquals": {"kms:ViaService": f"s3.{env.region}.{env.dns_suffix}"}})]

    def _job_network(self, env: AwsEnv) -> list[Statement]:
        """What Bedrock needs to place a job in the configured subnets (AWS: "Protect batch inference jobs using a
        VPC"): describe the network, create the job's interfaces (tagged as Bedrock's, of this account's jobs) in
        those subnets and security groups only, and manage only those interfaces afterwards."""
        vpc = self.settings.job_vpc
        if vpc is None:
            return []
        subnets = [env.arn("ec2", f"subnet/{subnet}") for subnet in vpc.subnet_ids]
        groups = [env.arn("ec2", f"security-group/{group}") for group in vpc.security_group_ids]
        jobs = env.arn("bedrock", "model-invocation-job/*")
        interfaces = env.arn("ec2", "network-interface/*")
        return [
            Statement("DescribeJobNetwork", ["ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces",
                                             "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"],
                      ["*"]),
            Statement("CreateJobInterfaces", ["ec2:CreateNetworkInterface"], [interfaces],
                      conditions={"StringEquals": {"aws:RequestTag/BedrockManaged": "true"},
                                  "ArnLike": {"aws:RequestTag/BedrockModelInvocationJobArn": jobs}}),
            Statement("CreateJobInterfacesInTheJobSubnets", ["ec2:CreateNetworkInterface"], [*subnets, *groups]),
            Statement("ManageJobInterfaces", ["ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
                                              "ec2:DeleteNetworkInterfacePermission"], [interfaces],
                      conditions={"ArnEquals": {"ec2:Subnet": subnets},
                                  "ArnLike": {"ec2:ResourceTag/BedrockModelInvocationJobArn": jobs}}),
            Statement("TagJobInterfacesOnCreation", ["ec2:CreateTags"], [interfaces],
                      conditions={"StringEquals": {"ec2:CreateAction": "CreateNetworkInterface"},
                                  "ForAllValues:StringEquals": {"aws:TagKeys": ["BedrockManaged",
                                                                                "BedrockModelInvocationJobArn"]}}),
        ]


def token_prices_variable(settings: BatchInferenceSettings, region: str) -> str:
    """The finalizer's TOKEN_PRICES: the model's prices in `region` as JSON, or "" when none are known."""
    prices = settings.prices_in(region)
    if prices is None:
        return ""
    return json.dumps({"model": settings.model.model_id, "currency": "USD",
                       "inputPerMillionTokens": prices.input_per_million_tokens,
                       "outputPerMillionTokens": prices.output_per_million_tokens,
                       "batchDiscount": prices.batch_discount}, sort_keys=True)


def input_retention(settings: BatchInferenceSettings) -> Retention:
    """Corpora for corpusRetentionDays (or for ever); shards until a run's redrive window has passed."""
    return Retention(settings.noncurrent_version_days, expiries=(
        *_kept("expire-corpora", settings.corpus_prefix, retention_days(settings.corpus_retention_days)),
        Expiry("expire-shards", SHARD_PREFIX, settings.intermediate_retention_days)))


def output_retention(settings: BatchInferenceSettings) -> Retention:
    """Results and manifests for resultRetentionDays (or for ever); Bedrock's job output and the Maps' result files
    until a run's redrive window has passed (under runs/ too: S3 applies the shorter expiry)."""
    results = retention_days(settings.result_retention_days)
    return Retention(settings.noncurrent_version_days, expiries=(
        *_kept("expire-results", RESULTS_PREFIX, results), *_kept("expire-manifests", RUNS_PREFIX, results),
        Expiry("expire-job-output", BEDROCK_OUTPUT_PREFIX, settings.intermediate_retention_days),
        Expiry("expire-map-results", f"{MAP_RESULTS_PREFIX}/", settings.intermediate_retention_days)))


def _kept(rule_id: str, prefix: str, days: int | None) -> tuple[Expiry, ...]:
    return () if days is None else (Expiry(rule_id, prefix, days),)


def handler_code(architecture: str, python_version: str) -> Any:
    """`code` for `BatchInference`: each function's entry point in the one `batch_inference` archive."""
    from components.blocks.packaging import function_code

    def code(module: str) -> FunctionCode:
        return function_code(HANDLER_PACKAGE, module=module, architecture=architecture,
                             python_version=python_version)

    return code
