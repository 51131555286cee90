"""The batch-inference component, asserted on recorded registrations in preview and update modes; its state machine
definition validated against the Amazon States Language; and the rules of its config section."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.blocks.alarm_topic import AlarmTopic
from components.blocks.iam import AwsEnv
from components.blocks.naming import Naming
from components.config import BatchInferenceSettings, ConfigError, parse_stack_config
from components.pipelines.batch_inference import BatchInference
from components.pipelines.batch_inference_asl import AslParameters, definition, shard_concurrency
from offline.check import contains_unknown
from offline.model import ResourceRecord
from offline.synth import Synthesis, run_program
from tests.blocks.programs import fake_code
from tests.support.iam_actions import allowing_statements

REGION, ACCOUNT = "eu-west-1", "123456789012"
NAMING = Naming("ai-pipelines", "test", "shared", owner="platform")
PREFIX = "ai-pipelines-test-batchinf"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
MINIMAL = {"model": {"modelId": MODEL, "task": "summarize"}}
UNKNOWN_AT_PREVIEW_BY_DESIGN = {("aws:kms/alias:Alias", "targetKeyId")}
ASL_VALIDATOR = "asl-validator@4.0.0"  # the npm package, fetched by npx on first use


def settings(**overrides: Any) -> BatchInferenceSettings:
    raw = json.loads(json.dumps(MINIMAL))
    for key, value in overrides.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and isinstance(raw.get(key), dict) else value
    return BatchInferenceSettings.model_validate(raw)


def synth(config: BatchInferenceSettings | None = None, *, mode: str = "preview") -> Synthesis:
    def program() -> None:
        env = AwsEnv.lookup()
        topic = AlarmTopic(NAMING, env)
        BatchInference(NAMING.child("batchinf"), env, config or settings(), code=lambda module: fake_code(),
                       alarm_topic_arn=topic.arn, log_retention_days=30, protect_data=False)

    return run_program(program, project="ai-pipelines", stack="test", mode=mode,  # type: ignore[arg-type]
                       config={"aws:region": REGION})


@pytest.fixture(scope="module", params=["preview", "update"])
def stack(request: pytest.FixtureRequest) -> Synthesis:
    return synth(settings(concurrentJobs=7, onDemandConcurrency=12, itemsPerBatch=16,
                          toleratedFailurePercentage=2.5, reconcileIntervalMinutes=10), mode=request.param)


def arn(service: str, resource: str, *, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def statements(record: ResourceRecord, prop: str = "policy") -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(record.inputs[prop])["Statement"]}


def function_arn(purpose: str) -> str:
    return arn("lambda", f"function:{PREFIX}-{purpose}")


def states(stack: Synthesis) -> dict[str, dict[str, Any]]:
    """Every state of the definition by name, nested ones included."""
    found: dict[str, dict[str, Any]] = {}

    def walk(level: dict[str, Any]) -> None:
        for name, body in level.items():
            found[name] = body
            if "ItemProcessor" in body:
                walk(body["ItemProcessor"]["States"])

    walk(json.loads(stack.named("batchinf-runs").inputs["definition"])["States"])
    return found


def test_every_input_is_known_at_preview() -> None:
    preview = synth()
    unknown = [(r.type, r.name, key) for r in preview.resources for key, value in r.inputs.items()
               if contains_unknown(value) and (r.type, key) not in UNKNOWN_AT_PREVIEW_BY_DESIGN]
    assert unknown == []


def test_the_state_machine_is_standard_logged_to_a_retained_log_group_and_traced(stack: Synthesis) -> None:
    machine, logs = stack.named("batchinf-runs"), stack.named("batchinf-runs-logs")
    assert machine.inputs["type"] == "STANDARD" and machine.inputs["name"] == f"{PREFIX}-runs"
    assert logs.inputs["name"] == f"/aws/vendedlogs/states/{PREFIX}-runs" and logs.inputs["retentionInDays"] == 30
    logging = machine.inputs["loggingConfiguration"]
    assert logging == {"level": "ERROR", "includeExecutionData": False,
                       "logDestination": arn("logs", f"log-group:/aws/vendedlogs/states/{PREFIX}-runs:*")}
    assert logs.urn in machine.property_dependencies["loggingConfiguration"]
    assert machine.inputs["tracingConfiguration"] == {"enabled": True}


def test_both_maps_are_distributed_bounded_by_their_quotas_and_tolerate_failures(stack: Synthesis) -> None:
    every = states(stack)
    submit, infer = every["SubmitShards"], every["InferRecords"]
    for state in (submit, infer):
        assert state["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
        assert state["ToleratedFailurePercentage"] == 2.5
        assert state["ResultWriter"]["Parameters"] == {"Bucket": f"{PREFIX}-output-{ACCOUNT}-{REGION}",
                                                       "Prefix": "runs/map-results"}
        assert "Catch" not in state  # a failed Map fails the run there, so a redrive restarts the Map Run
    assert submit["MaxConcurrency"] == 7 and infer["MaxConcurrency"] == 12
    assert submit["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    assert infer["ItemReader"]["ReaderConfig"] == {"InputType": "JSONL"}
    assert infer["ItemBatcher"] == {"MaxItemsPerBatch": 16, "MaxInputBytesPerBatch": 261_120,
                                    "BatchInput": {"runId.$": "$.sharding.runId"}}


def test_a_shard_switched_for_the_deadline_runs_as_the_synchronous_map_runs_a_corpus(stack: Synthesis) -> None:
    found = states(stack)
    shard, corpus = found["InferShard"], found["InferRecords"]
    assert shard["ItemReader"]["Parameters"] == {"Bucket.$": "$.shard.bucket", "Key.$": "$.shard.key"}
    assert shard["ItemReader"]["ReaderConfig"] == {"InputType": "JSONL"}
    assert shard["ItemBatcher"] == {**corpus["ItemBatcher"],
                                    "BatchInput": {"runId.$": "$.runId", "shardId.$": "$.shard.shardId"}}
    for key in ("ToleratedFailurePercentage", "ResultWriter"):
        assert shard[key] == corpus[key], key
    assert shard["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert found["InferShardBatch"] == found["InferBatch"]
    assert (shard["ResultPath"], shard["End"]) == ("$.switched", True)
    # The deadline reaches every child and its submitter.
    submit = found["SubmitShards"]
    assert submit["ItemSelector"]["deadline.$"] == "$.sharding.deadline"
    assert found["SubmitAndWait"]["Parameters"]["Payload"]["deadline.$"] == "$.deadline"
    assert found["Shard"]["Parameters"]["Payload"]["options.$"] == "$"


def test_switched_shards_together_stay_within_the_sync_workers_reserved_concurrency(stack: Synthesis) -> None:
    """Every SubmitShards child may switch: concurrentJobs (7) InferShard Maps at once, each at its share of the
    on-demand concurrency (12 // 7 = 1), all calling the sync worker reserved at onDemandConcurrency (12)."""
    found = states(stack)
    reserved = stack.named("batchinf-sync-worker").inputs["reservedConcurrentExecutions"]
    assert found["InferShard"]["MaxConcurrency"] == 1
    assert found["SubmitShards"]["MaxConcurrency"] * found["InferShard"]["MaxConcurrency"] <= reserved == 12


@pytest.mark.parametrize(("jobs", "on_demand", "share"), [(7, 12, 1), (4, 100, 25), (10, 10, 1), (3, 20, 6),
                                                          (10, 5, 1)])
def test_a_switched_shards_concurrency_is_its_share_of_the_on_demand_concurrency(jobs: int, on_demand: int,
                                                                                 share: int) -> None:
    p = AslParameters("a", "b", "c", "d", "bucket", "runs/x", jobs, on_demand, 1, 1024, 5.0, 60, 60, 60, 60, 60, 1)
    found = definition(p)["States"]["SubmitShards"]["ItemProcessor"]["States"]["InferShard"]
    assert found["MaxConcurrency"] == shard_concurrency(p) == share
    # Within the reservation whenever there are at least as many on-demand slots as jobs; below that, one each.
    assert jobs * share <= on_demand or share == 1


def test_every_task_retries_throttling_and_has_a_timeout(stack: Synthesis) -> None:
    tasks = {name: body for name, body in states(stack).items() if body["Type"] == "Task"}
    assert sorted(tasks) == ["Finalize", "InferBatch", "InferShardBatch", "Shard", "SubmitAndWait"]
    # Nothing catches a failure (a redrive restarts where it failed): the one Catch sends a shard that must meet the
    # run's deadline to synchronous calls.
    caught = {name: state["Catch"] for name, state in states(stack).items() if "Catch" in state}
    assert caught == {"SubmitAndWait": [{"ErrorEquals": ["DeadlineFallbackError"], "ResultPath": "$.fallback",
                                         "Next": "InferShard"}]}
    for name, task in tasks.items():
        retried = {error for retry in task["Retry"] for error in retry["ErrorEquals"]}
        assert "Lambda.TooManyRequestsException" in retried, name
        assert all(r["BackoffRate"] == 2.0 for r in task["Retry"]), name
        leases = (["ShardBusyError"], ["PublicationBusyError"])  # waits that must outlast a lease: never shortened
        assert all(r["JitterStrategy"] == ("NONE" if r["ErrorEquals"] in leases else "FULL") for r in task["Retry"])
        assert 0 < task["TimeoutSeconds"] <= 72 * 3600, name
    (model,) = [r for r in tasks["InferBatch"]["Retry"] if "ThrottlingException" in r["ErrorEquals"]]
    assert model["MaxAttempts"] == 3  # the sync worker's BATCH_RETRIES
    # The sync worker at its reserved concurrency: waited out first (the first matching retrier is the one used)
    # for as long as another batch may hold its slot, twice its timeout in ceilings as full jitter halves each step.
    for name in ("InferBatch", "InferShardBatch"):
        throttled, transient = tasks[name]["Retry"][:2]
        assert throttled["ErrorEquals"] == ["Lambda.TooManyRequestsException"], name
        assert "Lambda.TooManyRequestsException" not in transient["ErrorEquals"], name
        ceilings = [min(throttled["MaxDelaySeconds"], throttled["IntervalSeconds"] * 2 ** n)
                    for n in range(throttled["MaxAttempts"])]
        assert sum(ceilings) >= 2 * tasks[name]["TimeoutSeconds"], name
    wait = tasks["SubmitAndWait"]
    assert wait["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert wait["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token"
    assert wait["HeartbeatSeconds"] == 3 * 10 * 60  # three reconciler intervals
    assert wait["TimeoutSeconds"] == (24 + 24) * 3600
    assert {"ThrottlingException", "States.HeartbeatTimeout"} <= {e for r in wait["Retry"] for e in r["ErrorEquals"]}
    # A full concurrent-jobs quota is waited out for as long as a job may wait: with full jitter each step averages
    # half its ceiling, so the ceilings add up to twice the job's wait.
    (quota,) = [r for r in wait["Retry"] if r["ErrorEquals"] == ["JobQuotaFullError"]]
    ceilings = [min(quota["MaxDelaySeconds"], quota["IntervalSeconds"] * 2 ** n) for n in range(quota["MaxAttempts"])]
    assert sum(ceilings) >= 2 * wait["TimeoutSeconds"]


def test_the_definition_names_the_pipelines_functions_by_arn(stack: Synthesis) -> None:
    every = states(stack)
    for state, purpose in (("Shard", "sharder"), ("SubmitAndWait", "submitter"), ("InferBatch", "sync-worker"),
                           ("Finalize", "finalizer")):
        assert every[state]["Parameters"]["FunctionName"] == function_arn(purpose)
    machine = stack.named("batchinf-runs")
    functions = {stack.named(f"batchinf-{p}").urn for p in ("sharder", "submitter", "sync-worker", "finalizer")}
    assert functions <= set(machine.property_dependencies["definition"])


def test_the_state_machine_role_runs_its_own_children_and_invokes_only_the_pipelines_functions(
        stack: Synthesis) -> None:
    role, policy = stack.named("batchinf-runs-role"), stack.named("batchinf-runs-policy")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "states.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                                  "ArnLike": {"aws:SourceArn": arn("states", f"stateMachine:{PREFIX}-runs")}}
    granted = statements(policy)
    assert granted["RunOwnChildExecutions"]["Resource"] == [arn("states", f"stateMachine:{PREFIX}-runs")]
    assert granted["WatchOwnChildExecutions"]["Resource"] == [arn("states", f"execution:{PREFIX}-runs/*:*")]
    assert granted["RedriveOwnMapRuns"]["Action"] == ["states:RedriveExecution"]
    assert granted["RedriveOwnMapRuns"]["Resource"] == [arn("states", f"execution:{PREFIX}-runs/*:*")]
    assert sorted(granted["InvokeThePipelineFunctions"]["Resource"]) == sorted(
        function_arn(p) for p in ("sharder", "submitter", "sync-worker", "finalizer"))
    assert granted["ReadShardListsAndPreparedRecords"]["Resource"] == [
        f"arn:aws:s3:::{PREFIX}-input-{ACCOUNT}-{REGION}/shards/*"]
    assert granted["WriteMapResults"]["Resource"] == [
        f"arn:aws:s3:::{PREFIX}-output-{ACCOUNT}-{REGION}/runs/map-results/*"]


def test_the_failure_lane_has_a_dlq_and_alarms(stack: Synthesis) -> None:
    lane, dlq = stack.named("batchinf-failures"), stack.named("batchinf-failures-dlq")
    assert lane.inputs["messageRetentionSeconds"] == 7 * 24 * 3600 and lane.inputs["sqsManagedSseEnabled"] is True
    assert json.loads(lane.inputs["redrivePolicy"])["deadLetterTargetArn"] == arn("sqs", dlq.inputs["name"])
    alarms = {r.name: r.inputs for r in stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert alarms["batchinf-failures-dlq-depth-alarm"]["threshold"] == 0
    assert alarms["batchinf-failures-age-alarm"]["threshold"] == 24 * 3600


def test_a_run_that_fails_times_out_or_is_aborted_pages_through_the_alarm_topic(stack: Synthesis) -> None:
    alarm = stack.named("batchinf-runs-failed-alarm").inputs
    machine = arn("states", "stateMachine:ai-pipelines-test-batchinf-runs")
    metrics = [q["metric"] for q in alarm["metricQueries"] if "metric" in q]
    assert [m["metricName"] for m in metrics] == ["ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"]
    assert all(m["namespace"] == "AWS/States" and m["dimensions"] == {"StateMachineArn": machine}
               and m["stat"] == "Sum" and m["period"] == 60 for m in metrics)
    [total] = [q for q in alarm["metricQueries"] if q.get("returnData")]
    assert total["expression"] == "FILL(m0, 0) + FILL(m1, 0) + FILL(m2, 0)"
    assert (alarm["threshold"], alarm["comparisonOperator"]) == (0, "GreaterThanThreshold")
    assert "metricName" not in alarm and "namespace" not in alarm
    topic = arn("sns", "ai-pipelines-test-shared-alarms")
    assert alarm["alarmActions"] == alarm["okActions"] == [topic]
    assert alarm["name"] == "ai-pipelines-test-batchinf-runs-failed"


def lifecycle(stack: Synthesis, bucket: str) -> dict[str, tuple[str | None, dict[str, Any]]]:
    """Each lifecycle rule of the bucket by id: (its prefix, None for the whole bucket; its expiration)."""
    rules = stack.named(f"batchinf-{bucket}-lifecycle").inputs["rules"]
    assert all(rule["status"] == "Enabled" for rule in rules)
    return {rule["id"]: (rule["filter"].get("prefix"), rule["expiration"]) for rule in rules}


def test_corpora_are_kept_90_days_and_shards_until_the_redrive_window_has_passed(stack: Synthesis) -> None:
    assert lifecycle(stack, "input") == {
        "abort-uploads-expire-noncurrent-versions": (None, {"expiredObjectDeleteMarker": True}),
        "expire-corpora": ("corpus/", {"days": 90}),
        "expire-shards": ("shards/", {"days": 31})}
    whole = stack.named("batchinf-input-lifecycle").inputs["rules"][0]
    assert whole["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}
    assert whole["noncurrentVersionExpiration"] == {"noncurrentDays": 30}


def test_results_and_manifests_are_kept_a_year_job_output_and_map_results_until_redrive_has_passed(
        stack: Synthesis) -> None:
    assert lifecycle(stack, "output") == {
        "abort-uploads-expire-noncurrent-versions": (None, {"expiredObjectDeleteMarker": True}),
        "expire-results": ("results/", {"days": 365}),
        "expire-manifests": ("runs/", {"days": 365}),
        "expire-job-output": ("bedrock-output/", {"days": 31}),
        # Under runs/ as well: S3 honours the shorter of two overlapping expirations.
        "expire-map-results": ("runs/map-results/", {"days": 31})}


def test_the_prefixes_that_expire_are_the_ones_the_pipeline_writes(stack: Synthesis) -> None:
    from components.pipelines import batch_inference as pipeline

    writers = [body["ResultWriter"]["Parameters"]["Prefix"] for body in states(stack).values()
               if "ResultWriter" in body]
    assert writers and all(f"{p}/" == "runs/map-results/" for p in writers)
    submitter = stack.named("batchinf-submitter").inputs["environment"]["variables"]
    assert submitter["BEDROCK_OUTPUT_PREFIX"] == pipeline.BEDROCK_OUTPUT_PREFIX == "bedrock-output/"
    sharder = stack.named("batchinf-sharder").inputs["environment"]["variables"]
    assert (sharder["SHARD_PREFIX"], sharder["RESULTS_PREFIX"]) == ("shards/", "results/")


def test_retention_follows_the_config_and_forever_keeps_corpora_and_results() -> None:
    configured = synth(settings(corpusRetentionDays="forever", resultRetentionDays="forever",
                                intermediateRetentionDays=45, noncurrentVersionDays=7))
    assert lifecycle(configured, "input") == {
        "abort-uploads-expire-noncurrent-versions": (None, {"expiredObjectDeleteMarker": True}),
        "expire-shards": ("shards/", {"days": 45})}
    assert set(lifecycle(configured, "output")) == {"abort-uploads-expire-noncurrent-versions", "expire-job-output",
                                                    "expire-map-results"}
    for bucket in ("input", "output"):
        whole = configured.named(f"batchinf-{bucket}-lifecycle").inputs["rules"][0]
        assert whole["noncurrentVersionExpiration"] == {"noncurrentDays": 7}


def test_the_ledger_and_jobs_tables_are_conditional_write_ledgers_with_ttl_and_pitr(stack: Synthesis) -> None:
    for name, key in (("batchinf-ledger-table", "recordId"), ("batchinf-jobs-table", "jobKey")):
        table = stack.named(name).inputs
        assert table["hashKey"] == key and table["billingMode"] == "PAY_PER_REQUEST"
        assert table["tags"]["purpose"] == "ledger"
        assert table["ttl"] == {"attributeName": "expiresAt", "enabled": True}
        assert table["pointInTimeRecovery"] == {"enabled": True}


def test_bedrocks_job_events_reach_the_completion_queue_with_retries_and_a_dlq(stack: Synthesis) -> None:
    rule, target = stack.named("batchinf-job-events-rule"), stack.named("batchinf-job-events-target")
    assert rule.inputs["eventBusName"] == "default"
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["aws.bedrock"], "detail-type": ["Batch Inference Job State Change"],
        "detail": {"status": ["Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"]}}
    assert target.inputs["arn"] == arn("sqs", f"{PREFIX}-completions")
    assert target.inputs["retryPolicy"] == {"maximumRetryAttempts": 185, "maximumEventAgeInSeconds": 86400}
    assert target.inputs["deadLetterConfig"] == {"arn": arn("sqs", f"{PREFIX}-job-events-undelivered")}
    queue_policy = statements(stack.named("batchinf-completions-policy"))["JobEventRuleSends"]
    assert queue_policy["Principal"] == {"Service": "events.amazonaws.com"}
    assert queue_policy["Condition"]["ArnLike"] == {"aws:SourceArn": arn("events", f"rule/{PREFIX}-job-events")}
    mapping = stack.named("batchinf-completion-source").inputs
    assert mapping["batchSize"] == 1 and mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert stack.named("batchinf-completions").inputs["visibilityTimeoutSeconds"] == 6 * 900


def test_a_schedule_runs_the_reconciler_with_retries_and_a_dlq(stack: Synthesis) -> None:
    schedule = stack.named("batchinf-reconcile").inputs
    assert schedule["scheduleExpression"] == "rate(10 minutes)"
    assert schedule["target"]["arn"] == function_arn("reconciler")
    assert schedule["target"]["retryPolicy"] == {"maximumRetryAttempts": 185, "maximumEventAgeInSeconds": 86400}
    assert schedule["target"]["deadLetterConfig"] == {"arn": arn("sqs", f"{PREFIX}-completions-dlq")}
    assert statements(stack.named("batchinf-reconcile-policy"))["InvokeOnlyTheReconciler"]["Resource"] == [
        function_arn("reconciler")]


def test_the_batch_role_reads_only_shards_writes_only_job_output_and_invokes_only_the_model(
        stack: Synthesis) -> None:
    trust = json.loads(stack.named("batchinf-batch-role").inputs["assumeRolePolicy"])["Statement"]
    assert trust == [{"Sid": "TrustService", "Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"},
                      "Action": ["sts:AssumeRole"], "Condition": {
                          "StringEquals": {"aws:SourceAccount": ACCOUNT},
                          "ArnLike": {"aws:SourceArn": arn("bedrock", "model-invocation-job/*")}}}]
    granted = statements(stack.named("batchinf-batch-role-policy"))
    input_bucket, output_bucket = f"{PREFIX}-input-{ACCOUNT}-{REGION}", f"{PREFIX}-output-{ACCOUNT}-{REGION}"
    assert granted["ReadShards"] | {} == {"Sid": "ReadShards", "Effect": "Allow", "Action": ["s3:GetObject"],
                                          "Resource": [f"arn:aws:s3:::{input_bucket}/shards/*"]}
    assert granted["WriteJobOutput"]["Resource"] == [f"arn:aws:s3:::{output_bucket}/bedrock-output/*"]
    assert granted["ListShards"]["Condition"] == {"StringLike": {"s3:prefix": ["shards/*"]}}
    assert granted["InvokeTheConfiguredModel"]["Resource"] == [
        f"arn:aws:bedrock:{REGION}::foundation-model/{MODEL}"]
    assert sorted(a for s in granted.values() for a in s["Action"]) == [
        "bedrock:InvokeModel", "s3:GetObject", "s3:ListBucket", "s3:ListBucket", "s3:PutObject"]


KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
JOB_VPC = {"subnetIds": ["subnet-0a1b2c3d4e5f60718", "subnet-0a1b2c3d4e5f60719"],
           "securityGroupIds": ["sg-0a1b2c3d4e5f60718"]}


def test_jobs_carry_the_stacks_tags_and_nothing_else_unless_configured(stack: Synthesis) -> None:
    environment = stack.named("batchinf-submitter").inputs["environment"]["variables"]
    assert json.loads(environment["JOB_TAGS"]) == {"project": "ai-pipelines", "stack": "test",
                                                   "pipeline": "batchinf", "owner": "platform"}
    assert (environment["JOB_OUTPUT_KMS_KEY"], environment["JOB_VPC"]) == ("", "")
    assert not any(a.startswith(("kms:", "ec2:")) for s in statements(stack.named("batchinf-batch-role-policy"))
                   .values() for a in s["Action"])
    assert not any(a.startswith("kms:") for s in statements(stack.named("batchinf-completion-policy")).values()
                   for a in s["Action"])


def test_a_configured_output_key_is_used_only_through_s3_by_the_batch_role_and_the_completion_handler() -> None:
    configured = synth(settings(jobOutputKmsKeyArn=KEY, jobVpc=JOB_VPC), mode="update")
    environment = configured.named("batchinf-submitter").inputs["environment"]["variables"]
    assert environment["JOB_OUTPUT_KMS_KEY"] == KEY and json.loads(environment["JOB_VPC"]) == JOB_VPC
    via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    role = statements(configured.named("batchinf-batch-role-policy"))
    assert role["EncryptJobOutput"] == {"Sid": "EncryptJobOutput", "Effect": "Allow",
                                        "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": [KEY],
                                        "Condition": via_s3}
    completion = statements(configured.named("batchinf-completion-policy"))
    assert completion["ReadEncryptedJobOutput"]["Action"] == ["kms:Decrypt"]
    assert (completion["ReadEncryptedJobOutput"]["Resource"], completion["ReadEncryptedJobOutput"]["Condition"]) == (
        [KEY], via_s3)


def test_a_configured_vpc_lets_bedrock_place_jobs_only_in_its_subnets() -> None:
    configured = synth(settings(jobVpc=JOB_VPC), mode="update")
    role = statements(configured.named("batchinf-batch-role-policy"))
    subnets = [arn("ec2", f"subnet/{s}") for s in JOB_VPC["subnetIds"]]
    interfaces = arn("ec2", "network-interface/*")
    jobs = arn("bedrock", "model-invocation-job/*")
    assert role["CreateJobInterfaces"]["Resource"] == [interfaces]
    assert role["CreateJobInterfaces"]["Condition"] == {
        "StringEquals": {"aws:RequestTag/BedrockManaged": "true"},
        "ArnLike": {"aws:RequestTag/BedrockModelInvocationJobArn": jobs}}
    assert role["CreateJobInterfacesInTheJobSubnets"]["Resource"] == [
        *subnets, arn("ec2", "security-group/sg-0a1b2c3d4e5f60718")]
    assert role["ManageJobInterfaces"]["Condition"] == {
        "ArnEquals": {"ec2:Subnet": subnets}, "ArnLike": {"ec2:ResourceTag/BedrockModelInvocationJobArn": jobs}}
    assert role["TagJobInterfacesOnCreation"]["Condition"]["StringEquals"] == {
        "ec2:CreateAction": "CreateNetworkInterface"}
    assert role["DescribeJobNetwork"]["Resource"] == ["*"]
    assert all(a.startswith("ec2:Describe") for a in role["DescribeJobNetwork"]["Action"])


@pytest.mark.parametrize(("overrides", "message"), [
    ({"jobOutputKmsKeyArn": "alias/my-key"}, "String should match pattern"),
    ({"jobVpc": {"subnetIds": [], "securityGroupIds": ["sg-0a1b2c3d4e5f60718"]}}, "at least 1 item"),
    ({"jobVpc": {"subnetIds": ["vpc-0a1b2c3d"], "securityGroupIds": ["sg-0a1b2c3d4e5f60718"]}},
     "not subnet ids"),
])
def test_a_malformed_key_or_vpc_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_stack_config({"owner": "x", "batchInference": {**MINIMAL, **overrides}}, stack="dev")


def test_the_submitter_may_pass_only_the_batch_role_and_only_to_bedrock(stack: Synthesis) -> None:
    granted = statements(stack.named("batchinf-submitter-policy"))
    assert granted["PassOnlyTheBatchRoleToBedrock"] == {
        "Sid": "PassOnlyTheBatchRoleToBedrock", "Effect": "Allow", "Action": ["iam:PassRole"],
        "Resource": [f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-batch-role"],
        "Condition": {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}}
    assert granted["CreateJobsOfTheConfiguredModel"]["Resource"] == [
        arn("bedrock", "model-invocation-job/*"), f"arn:aws:bedrock:{REGION}::foundation-model/{MODEL}"]
    passes = [name for name, record in ((r.name, r) for r in stack.of_type("aws:iam/rolePolicy:RolePolicy"))
              if "iam:PassRole" in record.inputs["policy"]]
    assert passes == ["batchinf-submitter-policy"]


def test_every_task_function_reserves_what_it_can_need(stack: Synthesis) -> None:
    """Sharder and finalizer one per concurrent run (default 2), submitter the concurrent-jobs quota (7 here), the
    reconciler one; the sync worker the on-demand concurrency (12 here)."""
    reserved = {purpose: stack.named(f"batchinf-{purpose}").inputs.get("reservedConcurrentExecutions")
                for purpose in ("sharder", "submitter", "finalizer", "reconciler", "sync-worker")}
    assert reserved == {"sharder": 2, "submitter": 7, "finalizer": 2, "reconciler": 1, "sync-worker": 12}


def test_concurrent_runs_sizes_the_sharder_and_the_finalizer() -> None:
    runs = synth(settings(concurrentRuns=5))
    assert {runs.named(f"batchinf-{purpose}").inputs["reservedConcurrentExecutions"]
            for purpose in ("sharder", "finalizer")} == {5}
    with pytest.raises(ConfigError, match="concurrentRuns = 0: Input should be greater than or equal to 1"):
        parse_stack_config({"owner": "team", "batchInference": {**MINIMAL, "concurrentRuns": 0}}, stack="dev")


def test_an_inference_profile_extends_the_model_grants_to_its_regions() -> None:
    profile = synth(settings(model={"inferenceProfileId": f"eu.{MODEL}",
                                    "inferenceProfileRegions": ["eu-central-1", "eu-west-3"]}), mode="update")
    invoke = statements(profile.named("batchinf-sync-worker-policy"))["InvokeTheConfiguredModel"]["Resource"]
    assert invoke == [*(f"arn:aws:bedrock:{r}::foundation-model/{MODEL}"
                        for r in ("eu-central-1", "eu-west-1", "eu-west-3")),
                      arn("bedrock", f"inference-profile/eu.{MODEL}")]
    environment = profile.named("batchinf-submitter").inputs["environment"]["variables"]
    assert environment["MODEL_ID"] == f"eu.{MODEL}"


def test_the_functions_are_bounded_and_configured_from_the_stack(stack: Synthesis) -> None:
    sync = stack.named("batchinf-sync-worker").inputs
    assert sync["reservedConcurrentExecutions"] == 12 and sync["timeout"] == 900
    assert sync["environment"]["variables"]["BATCH_RETRIES"] == "3"
    sharder = stack.named("batchinf-sharder").inputs
    assert sharder["ephemeralStorage"] == {"size": min(10240, 2 * 1024 + 512)}
    assert sharder["handler"] == "demo.app.handler"  # fake code here; the stack passes batch_inference.<module>
    result_bus = stack.named("batchinf-results-bus").inputs["name"]
    assert statements(stack.named("batchinf-finalizer-policy"))["PublishRunCompleted"]["Resource"] == [
        arn("events", f"event-bus/{result_bus}")]


def _validate(definition_json: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx (Node.js) is not installed, so asl-validator cannot run; install Node.js to validate the "
                    "state machine definition against the Amazon States Language")
    path = tmp_path / "definition.json"
    path.write_text(definition_json)
    return subprocess.run([npx, "--yes", ASL_VALIDATOR, "--json-path", str(path)], capture_output=True, text=True,
                          timeout=300, check=False)


def test_the_definition_is_valid_amazon_states_language(tmp_path: Path) -> None:
    deployed = synth(mode="update").named("batchinf-runs").inputs["definition"]
    result = _validate(deployed, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stdout


def test_the_validator_rejects_a_broken_definition(tmp_path: Path) -> None:
    broken = definition(AslParameters("a", "b", "c", "d", "bucket", "runs/x", 1, 1, 1, 1024, 5.0, 60, 60, 60, 60, 60,
                                      1))
    broken["States"]["Shard"]["Nxt"] = broken["States"]["Shard"].pop("Next")
    result = _validate(json.dumps(broken), tmp_path)
    assert result.returncode != 0 and "invalid" in (result.stdout + result.stderr)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"minRecordsPerJob": 100, "maxRecordsPerJob": 150}, "below 2 x minRecordsPerJob - 1"),
    ({"minRecordsPerJob": 1000, "maxRecordBytes": 1_000_000, "maxFileBytes": 1 << 30}, "below 2 x minRecordsPerJob"),
    ({"model": {"modelId": "meta.llama3-8b-instruct-v1:0"}, "requestFormat": "native"},
     "requestFormat native builds the native request of anthropic and amazon.nova models only"),
    ({"requestFormat": "openai"}, "'converse' or 'native'"),
    ({"itemsPerBatch": 200, "recordConcurrency": 1}, "exceeds the worker's 840 s"),
    ({"completion": {"batchSize": 5}}, "must be 1"),
    ({"concurrentJobs": 0}, "greater than or equal to 1"),
    ({"jobTimeoutHours": 12}, "greater than or equal to 24"),
    ({"mode": "fast"}, "'batch', 'sync' or 'auto'"),
    ({"textField": "body", "idField": "body"}, "textField and idField are both 'body'"),
    ({"intermediateRetentionDays": 18}, "intermediateRetentionDays 18 must be longer than a run may last"),
    ({"jobTimeoutHours": 168, "intermediateRetentionDays": 30}, "720 h in all \\(at least 31 days\\)"),
    ({"corpusRetentionDays": 7}, "corpusRetentionDays 7 must be longer than a run may last"),
    ({"resultRetentionDays": 18}, "resultRetentionDays 18 must be longer"),
    ({"resultRetentionDays": "never"}, 'number of days from 1 to 36500, or "forever"'),
    ({"noncurrentVersionDays": 400}, "less than or equal to 365"),
    ({"corpusPrefix": "shards/"}, "overlaps the shard prefix shards/"),
])
def test_inconsistent_config_is_refused_naming_the_key(overrides: dict[str, Any], message: str) -> None:
    section = json.loads(json.dumps(MINIMAL))
    for key, value in overrides.items():
        section[key] = {**section.get(key, {}), **value} if isinstance(value, dict) else value
    with pytest.raises(ConfigError, match=message) as raised:
        parse_stack_config({"owner": "x", "batchInference": section}, stack="dev")
    assert "ai-pipelines:batchInference" in str(raised.value)


def test_records_are_converse_requests_for_any_model_unless_native_bodies_are_asked_for() -> None:
    for model in (MODEL, "meta.llama3-8b-instruct-v1:0", "mistral.mistral-large-2402-v1:0"):
        config = settings(model={"modelId": model})
        assert config.request_format == "converse"
        environment = synth(config).named("batchinf-sharder").inputs["environment"]["variables"]
        assert environment["REQUEST_FORMAT"] == "converse"
    native = synth(settings(requestFormat="native"))
    for function in ("sharder", "submitter"):
        assert native.named(f"batchinf-{function}").inputs["environment"]["variables"]["REQUEST_FORMAT"] == "native"


def test_runs_are_costed_at_the_models_price_in_the_stacks_region_or_the_configured_one() -> None:
    def prices(config: BatchInferenceSettings) -> str:
        return str(synth(config).named("batchinf-finalizer").inputs["environment"]["variables"]["TOKEN_PRICES"])

    assert json.loads(prices(settings())) == {  # eu-west-1, Claude 3 Haiku, from the price table
        "model": MODEL, "currency": "USD", "inputPerMillionTokens": 0.25, "outputPerMillionTokens": 1.25,
        "batchDiscount": 0.5}
    # Under an inference profile the model is priced as itself.
    profiled = settings(model={"inferenceProfileId": f"eu.{MODEL}", "inferenceProfileRegions": ["eu-west-1"]})
    assert json.loads(prices(profiled))["inputPerMillionTokens"] == 0.25
    unpriced = settings(model={"modelId": "amazon.nova-lite-v1:0"})  # priced in us-east-1 only
    assert prices(unpriced) == ""
    configured = settings(model={"modelId": "amazon.nova-lite-v1:0"},
                          tokenPrices={"inputPerMillionTokens": 0.078, "outputPerMillionTokens": 0.312})
    assert json.loads(prices(configured)) == {
        "model": "amazon.nova-lite-v1:0", "currency": "USD", "inputPerMillionTokens": 0.078,
        "outputPerMillionTokens": 0.312, "batchDiscount": 0.5}
    run_ended = synth(configured).named("batchinf-run-ended").inputs["environment"]["variables"]
    assert run_ended["TOKEN_PRICES"] == prices(configured)


def test_a_run_deadline_and_a_jobs_expected_length_reach_the_sharder_and_the_submitter(stack: Synthesis) -> None:
    def variables(synthesis: Synthesis, function: str) -> dict[str, str]:
        return dict(synthesis.named(f"batchinf-{function}").inputs["environment"]["variables"])

    assert variables(stack, "sharder")["RUN_DEADLINE_HOURS"] == "0"  # no deadline unless a run names one
    assert variables(stack, "submitter")["DEADLINE_JOB_HOURS"] == "24"
    configured = synth(settings(runDeadlineHours=36, deadlineJobHours=12))
    assert variables(configured, "sharder")["RUN_DEADLINE_HOURS"] == "36"
    assert variables(configured, "submitter")["DEADLINE_JOB_HOURS"] == "12"


def test_the_section_enables_the_pipeline() -> None:
    config = parse_stack_config({"owner": "x", "batchInference": MINIMAL}, stack="dev")
    assert config.enabled_pipelines == ["batchInference"]
    disabled = parse_stack_config({"owner": "x", "batchInference": {**MINIMAL, "enabled": False}}, stack="dev")
    assert disabled.enabled_pipelines == []


# Under an inference profile (prod), the job's modelId is the profile id: AWS authorizes the job on the profile's
# ARN, and the profile routes it to the model in each of its regions.
PROFILE = f"eu.{MODEL}"
PROFILE_ARN = arn("bedrock", f"inference-profile/{PROFILE}")
PROFILE_MODELS = [f"arn:aws:bedrock:{r}::foundation-model/{MODEL}" for r in ("eu-central-1", "eu-west-1", "eu-west-3")]


@pytest.fixture(scope="module")
def profiled() -> Synthesis:
    return synth(settings(model={"inferenceProfileId": PROFILE,
                                 "inferenceProfileRegions": ["eu-central-1", "eu-west-3"]}), mode="update")


def test_under_an_inference_profile_the_submitter_creates_jobs_of_exactly_the_profiles_models(
        profiled: Synthesis) -> None:
    # AWS authorizes CreateModelInvocationJob on the job and the foundation model (its service authorization
    # reference, as the policy pack's IAM database holds it): under a profile, the model in each of its regions.
    granted = statements(profiled.named("batchinf-submitter-policy"))
    create = granted["CreateJobsOfTheConfiguredModel"]
    assert create["Action"] == ["bedrock:CreateModelInvocationJob"]
    assert create["Resource"] == [arn("bedrock", "model-invocation-job/*"), *PROFILE_MODELS]
    model_id = profiled.named("batchinf-submitter").inputs["environment"]["variables"]["MODEL_ID"]
    assert model_id == PROFILE
    creates = [s for s in granted.values() if "bedrock:CreateModelInvocationJob" in s["Action"]]
    assert creates == [create]
    for other in (arn("bedrock", f"inference-profile/us.{MODEL}"), arn("bedrock", "application-inference-profile/x"),
                  f"arn:aws:bedrock:us-east-1::foundation-model/{MODEL}",
                  f"arn:aws:bedrock:{REGION}::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0"):
        assert allowing_statements(creates, "bedrock:CreateModelInvocationJob", other) == [], other


def test_under_an_inference_profile_the_batch_role_invokes_exactly_the_profile_and_its_regional_models(
        profiled: Synthesis) -> None:
    granted = statements(profiled.named("batchinf-batch-role-policy"))
    invoke = granted["InvokeTheConfiguredModel"]
    assert invoke["Action"] == ["bedrock:InvokeModel"]
    assert invoke["Resource"] == [*PROFILE_MODELS, PROFILE_ARN]
    assert [s for s in granted.values() if any(a.startswith("bedrock:") for a in s["Action"])] == [invoke]


def test_runs_that_end_without_succeeding_reach_the_run_ended_handler_with_retries_and_a_dlq(
        stack: Synthesis) -> None:
    rule, target = stack.named("batchinf-run-endings-rule"), stack.named("batchinf-run-endings-target")
    assert rule.inputs["eventBusName"] == "default"
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"],
                   "stateMachineArn": [arn("states", f"stateMachine:{PREFIX}-runs")]}}
    assert stack.named("batchinf-runs").inputs["name"] == f"{PREFIX}-runs"  # the machine the pattern names
    assert target.inputs["arn"] == arn("sqs", f"{PREFIX}-run-endings")
    assert target.inputs["retryPolicy"] == {"maximumRetryAttempts": 185, "maximumEventAgeInSeconds": 86400}
    assert target.inputs["deadLetterConfig"] == {"arn": arn("sqs", f"{PREFIX}-run-endings-undelivered")}
    sends = statements(stack.named("batchinf-run-endings-policy"))["RunEndingRuleSends"]
    assert sends["Condition"]["ArnLike"] == {"aws:SourceArn": arn("events", f"rule/{PREFIX}-run-endings")}
    queue = stack.named("batchinf-run-endings").inputs
    assert json.loads(queue["redrivePolicy"])["deadLetterTargetArn"] == arn("sqs", f"{PREFIX}-run-endings-dlq")
    mapping = stack.named("batchinf-run-ended-source").inputs
    assert mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert queue["visibilityTimeoutSeconds"] == 6 * stack.named("batchinf-run-ended").inputs["timeout"]
    alarms = {r.name for r in stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert {"batchinf-run-endings-dlq-depth-alarm", "batchinf-run-endings-undelivered-depth-alarm"} <= alarms


def test_the_run_ended_handler_may_only_write_manifests_claim_publications_and_publish(stack: Synthesis) -> None:
    granted = statements(stack.named("batchinf-run-ended-policy"))
    own = {sid: (s["Action"], s["Resource"]) for sid, s in granted.items()
           if sid in ("WriteManifests", "ClaimThePublication", "PublishRunEnded")}
    assert own == {
        "WriteManifests": (["s3:PutObject"], [f"arn:aws:s3:::{PREFIX}-output-{ACCOUNT}-{REGION}/runs/*"]),
        "ClaimThePublication": (["dynamodb:GetItem", "dynamodb:UpdateItem"], [arn("dynamodb", f"table/{PREFIX}-jobs")]),
        "PublishRunEnded": (["events:PutEvents"], [arn("events", f"event-bus/{PREFIX}-results")])}
    actions = {a for s in granted.values() for a in s["Action"]}
    assert not {a for a in actions if a.startswith(("bedrock:", "sqs:SendMessage", "states:"))}


def test_the_finalizer_may_stop_only_jobs_and_read_only_the_jobs_table(stack: Synthesis) -> None:
    granted = statements(stack.named("batchinf-finalizer-policy"))
    assert granted["StopAbandonedJobs"]["Action"] == ["bedrock:StopModelInvocationJob"]
    assert granted["StopAbandonedJobs"]["Resource"] == [arn("bedrock", "model-invocation-job/*")]
    jobs = granted["ClaimThePublicationAndFailedShards"]
    assert jobs["Action"] == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert jobs["Resource"] == [arn("dynamodb", f"table/{PREFIX}-jobs")]
    finalize = states(stack)["Finalize"]
    (busy,) = [r for r in finalize["Retry"] if r["ErrorEquals"] == ["ShardBusyError"]]
    assert busy["JitterStrategy"] == "NONE"  # every wait at its full length: together they outlast a lease
    waits = [min(busy["MaxDelaySeconds"], busy["IntervalSeconds"] * 2 ** n) for n in range(busy["MaxAttempts"])]
    assert sum(waits) > 900  # a crashed holder's lease (the settling functions' timeout)
    (publication,) = [r for r in finalize["Retry"] if r["ErrorEquals"] == ["PublicationBusyError"]]
    waits = [min(publication["MaxDelaySeconds"], publication["IntervalSeconds"] * 2 ** n)
             for n in range(publication["MaxAttempts"])]
    assert publication["JitterStrategy"] == "NONE" and sum(waits) > 300  # jobs.PUBLICATION_LEASE_SECONDS


def test_a_job_output_that_disagrees_with_its_shard_pages_someone(stack: Synthesis) -> None:
    alarm = {r.name: r.inputs for r in stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}[
        "batchinf-output-mismatches-alarm"]
    completion = stack.named("batchinf-completion").inputs["environment"]["variables"]
    assert (alarm["namespace"], alarm["metricName"]) == (completion["POWERTOOLS_METRICS_NAMESPACE"], "OutputMismatches")
    assert alarm["dimensions"] == {"service": completion["POWERTOOLS_SERVICE_NAME"]}
    assert (alarm["statistic"], alarm["threshold"], alarm["comparisonOperator"]) == ("Sum", 0, "GreaterThanThreshold")
