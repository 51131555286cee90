"""Each rule of the stack config at the boundary it guards: the last value accepted, the first refused, and the
refusal's message naming the key, the value and the figure it computed; and how an unknown key is answered."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from batch_inference.records import model_family
from components.config import EXAMPLE_ACCOUNT, ConfigError, StackConfig, parse_stack_config, refuse_example_values
from tests.components.test_config import KB, error_for, kb

ROLE = "arn:aws:iam::123456789012:role/"
SUBNET = "subnet-0a1b2c3d4e5f60718"
GROUP = "sg-0a1b2c3d4e5f60718"
VPC_ID = "vpc-0a1b2c3d4e5f60718"
ROUTE_TABLE = "rtb-0a1b2c3d4e5f60718"
VPC = {"subnetIds": [SUBNET], "securityGroupIds": [GROUP], "vpcId": VPC_ID, "routeTableIds": [ROUTE_TABLE]}
DATABASE = {"host": "db.internal", "name": "ingest", "vpc": VPC}
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ingest/loader-AbC123"
# The file-ingestion loader as it ships (README): batches of 100 over a 55 s window.
LOADER = {"timeoutSeconds": 120, "memoryMb": 512, "reservedConcurrency": 10, "batchSize": 100,
          "batchingWindowSeconds": 55, "maxConcurrency": 10}


def accepted(raw: dict) -> StackConfig:
    return parse_stack_config({"owner": "data", **raw}, stack="prod")


def file_ingestion(database: dict[str, Any] | None = None, **overrides: object) -> dict:
    return {"fileIngestion": {"database": {**DATABASE, **(database or {})}, **overrides}}


def vpc(**overrides: object) -> dict:
    """A file-ingestion section whose functions run in a VPC configured as given (no vpcId, no route tables)."""
    return file_ingestion(database={"vpc": {"subnetIds": [SUBNET], "securityGroupIds": [GROUP], **overrides}})


# --- file ingestion: a batch of the largest files in a quarter of the loader's memory ---------------------------

def test_a_batch_of_the_largest_files_may_fill_exactly_a_quarter_of_the_memory() -> None:
    worker = {**LOADER, "batchSize": 128}  # 128 x 1 MiB = a quarter of 512 MB
    config = accepted(file_ingestion(maxObjectBytes=1 << 20, worker=worker))
    assert config.file_ingestion is not None and config.file_ingestion.max_object_bytes == 1 << 20


def test_one_byte_more_per_file_is_refused_naming_the_quarter_in_bytes() -> None:
    message = error_for(file_ingestion(maxObjectBytes=(1 << 20) + 1, worker={**LOADER, "batchSize": 128}))
    assert ("ai-pipelines:fileIngestion: maxObjectBytes 1048577 x worker.batchSize 128 exceeds a quarter of "
            "worker.memoryMb 512 (134217728 bytes): a batch of the largest files, parsed, would not fit in memory"
            ) in message


# --- file ingestion: a slow write fails inside the invocation -------------------------------------------------

def test_the_loader_timeout_may_equal_twice_the_connect_and_statement_timeouts() -> None:
    database = {"connectTimeoutSeconds": 10, "statementTimeoutSeconds": 50}
    config = accepted(file_ingestion(database=database, worker={**LOADER, "timeoutSeconds": 120}))
    assert config.file_ingestion is not None and config.file_ingestion.worker.timeout_seconds == 120


def test_a_loader_timeout_one_second_shorter_is_refused_with_the_sum() -> None:
    database = {"connectTimeoutSeconds": 10, "statementTimeoutSeconds": 50}
    message = error_for(file_ingestion(database=database, worker={**LOADER, "timeoutSeconds": 119}))
    assert ("ai-pipelines:fileIngestion: worker.timeoutSeconds 119 is below 2 x (database.connectTimeoutSeconds + "
            "statementTimeoutSeconds) = 120: a slow write must fail inside the invocation, not with it") in message


# --- file ingestion: an announced version outlives its message --------------------------------------------------

def test_noncurrent_versions_may_be_kept_exactly_the_dead_letter_queues_14_days() -> None:
    config = accepted(file_ingestion(bucket={"noncurrentVersionDays": 14}))
    assert config.file_ingestion is not None and config.file_ingestion.bucket.noncurrent_version_days == 14


def test_noncurrent_versions_kept_13_days_are_refused_naming_the_14() -> None:
    message = error_for(file_ingestion(bucket={"noncurrentVersionDays": 13}))
    assert ("ai-pipelines:fileIngestion: bucket.noncurrentVersionDays 13 is below the 14 days a file's message may "
            "wait in its queue and dead-letter queue") in message


def test_an_existing_buckets_versions_are_its_owners() -> None:
    config = accepted(file_ingestion(bucket={"existingName": "ingest-landing"}))
    assert config.file_ingestion is not None and config.file_ingestion.bucket.existing_name == "ingest-landing"


# --- file ingestion: a route from the VPC to S3 and Secrets Manager --------------------------------------------

def test_without_a_vpc_id_declared_routes_to_both_services_are_enough() -> None:
    config = accepted(vpc(endpoints={"s3": "nat", "secretsManager": "existing"}))
    assert config.file_ingestion is not None
    database_vpc = config.file_ingestion.database.vpc
    assert (database_vpc.route("s3"), database_vpc.route("secrets_manager")) == ("nat", "existing")


def test_without_a_vpc_id_the_service_left_without_a_route_is_named_alone() -> None:
    message = error_for(vpc(endpoints={"s3": "nat"}))
    assert (f"ai-pipelines:fileIngestion.database.vpc: the functions run in subnets ['{SUBNET}'] and need a route "
            "to Secrets Manager: set vpcId") in message


def test_without_a_vpc_id_an_endpoint_to_create_is_refused() -> None:
    message = error_for(vpc(endpoints={"s3": "create", "secretsManager": "nat"}))
    assert f"endpoints s3: create needs vpcId (the VPC of subnets ['{SUBNET}'])" in message


def test_the_default_s3_gateway_endpoint_needs_route_tables() -> None:
    message = error_for(vpc(vpcId=VPC_ID))
    assert ("ai-pipelines:fileIngestion.database.vpc: endpoints.s3 is create (the default with vpcId): set "
            "routeTableIds") in message


@pytest.mark.parametrize("route", ["nat", "existing"])
def test_a_vpc_id_with_s3_reached_otherwise_needs_no_route_tables(route: str) -> None:
    config = accepted(vpc(vpcId=VPC_ID, endpoints={"s3": route}))
    assert config.file_ingestion is not None
    assert config.file_ingestion.database.vpc.route("s3") == route
    assert config.file_ingestion.database.vpc.route("secrets_manager") == "create"


def test_route_tables_without_the_s3_endpoint_to_attach_are_refused() -> None:
    message = error_for(vpc(vpcId=VPC_ID, routeTableIds=[ROUTE_TABLE], endpoints={"s3": "nat"}))
    assert "routeTableIds is set but endpoints.s3 is nat: the route tables are only for the S3 gateway" in message


def test_endpoint_subnets_need_the_secrets_manager_endpoint_the_stack_creates() -> None:
    config = accepted(vpc(vpcId=VPC_ID, routeTableIds=[ROUTE_TABLE], endpoints={"subnetIds": [SUBNET]}))
    assert config.file_ingestion is not None
    assert config.file_ingestion.database.vpc.endpoints.subnet_ids == (SUBNET,)
    message = error_for(vpc(vpcId=VPC_ID, routeTableIds=[ROUTE_TABLE],
                            endpoints={"secretsManager": "existing", "subnetIds": [SUBNET]}))
    assert "endpoints.subnetIds is set but the stack creates no Secrets Manager endpoint" in message


# --- file ingestion: the credentials' secret --------------------------------------------------------------------

@pytest.mark.parametrize("secret", [{"existingName": "ingest/loader"}, {"existingArn": SECRET_ARN}])
def test_an_existing_secret_is_named_by_its_arn_or_its_name(secret: dict) -> None:
    config = accepted(file_ingestion(database={"secret": secret}))
    assert config.file_ingestion is not None
    got = config.file_ingestion.database.secret
    assert (got.existing_arn, got.existing_name) == (secret.get("existingArn"), secret.get("existingName"))


def test_an_existing_secret_named_both_ways_is_refused() -> None:
    message = error_for(file_ingestion(database={"secret": {"existingArn": SECRET_ARN,
                                                            "existingName": "ingest/loader"}}))
    assert ("ai-pipelines:fileIngestion.database.secret: set existingArn or existingName, not both: the role may "
            "read exactly one secret") in message


@pytest.mark.parametrize("missing", ["host", "name"])
def test_without_aurora_the_database_needs_its_host_and_its_name(missing: str) -> None:
    database = {key: value for key, value in DATABASE.items() if key != missing}
    message = error_for({"fileIngestion": {"database": database}})
    assert ("ai-pipelines:fileIngestion.database: host and name are required (unless aurora.enabled): the loader's "
            "secret, which the stack writes, names the database") in message


AURORA = {"vpc": VPC, "aurora": {"enabled": True}}


def test_aurora_may_scale_within_one_capacity() -> None:
    config = accepted({"fileIngestion": {"database": {**AURORA, "aurora": {"enabled": True, "minCapacity": 2,
                                                                           "maxCapacity": 2}}}})
    assert config.file_ingestion is not None
    assert (config.file_ingestion.database.aurora.min_capacity, config.file_ingestion.database.aurora.max_capacity) \
        == (2, 2)
    message = error_for({"fileIngestion": {"database": {**AURORA, "aurora": {"enabled": True, "minCapacity": 2.5,
                                                                             "maxCapacity": 2}}}})
    assert "ai-pipelines:fileIngestion.database.aurora: minCapacity 2.5 exceeds maxCapacity 2" in message


def test_aurora_brings_its_own_secret_host_and_name() -> None:
    config = accepted({"fileIngestion": {"database": AURORA}})
    assert config.file_ingestion is not None and config.file_ingestion.database.aurora.enabled


@pytest.mark.parametrize("secret", [{"existingName": "ingest/loader"}, {"existingArn": SECRET_ARN}])
def test_aurora_with_an_existing_secret_is_refused(secret: dict) -> None:
    message = error_for({"fileIngestion": {"database": {**AURORA, "secret": secret}}})
    assert ("ai-pipelines:fileIngestion.database: aurora.enabled creates the cluster and its credentials' secret; "
            "remove secret.existingArn / secret.existingName") in message


# --- event processing: batches the worker processes concurrently ------------------------------------------------

EVENTS = {"intake": {"sources": ["com.example.documents"], "detailTypes": ["DocumentSubmitted"]},
          "model": {"modelId": "anthropic.claude-3-haiku-20240307-v1:0", "task": "summarize"}}
EVENT_WORKER = {"timeoutSeconds": 120, "memoryMb": 512, "reservedConcurrency": 20, "maxConcurrency": 20}


@pytest.mark.parametrize("size", [5, 10])
def test_event_batches_of_five_to_ten_are_accepted(size: int) -> None:
    config = accepted({"eventProcessing": {**EVENTS, "worker": {**EVENT_WORKER, "batchSize": size},
                                           "recordConcurrency": 5}})
    assert config.event_processing is not None and config.event_processing.worker.batch_size == size


def test_the_event_worker_timeout_may_equal_one_model_request_and_its_bookkeeping() -> None:
    # model.requestTimeoutSeconds 30 (the default) + 10 s of bookkeeping = 40 s.
    config = accepted({"eventProcessing": {**EVENTS, "worker": {**EVENT_WORKER, "timeoutSeconds": 40}}})
    assert config.event_processing is not None and config.event_processing.worker.timeout_seconds == 40
    message = error_for({"eventProcessing": {**EVENTS, "worker": {**EVENT_WORKER, "timeoutSeconds": 39}}})
    assert ("ai-pipelines:eventProcessing: worker.timeoutSeconds 39 is below model.requestTimeoutSeconds 30 + 10 s "
            "of bookkeeping = 40: one model request must fit in an invocation") in message


@pytest.mark.parametrize("size", [4, 11])
def test_event_batches_of_four_or_eleven_are_refused(size: int) -> None:
    worker = {**EVENT_WORKER, "batchSize": size, "batchingWindowSeconds": 1}  # a window, which 11 needs anyway
    message = error_for({"eventProcessing": {**EVENTS, "worker": worker, "recordConcurrency": 4}})
    assert f"ai-pipelines:eventProcessing: worker.batchSize {size} is outside 5..10" in message


# --- batch inference ---------------------------------------------------------------------------------------------

BATCH = {"model": {"modelId": "anthropic.claude-3-haiku-20240307-v1:0", "task": "summarize"}}


def batch_inference(**overrides: object) -> dict:
    return {"batchInference": {**BATCH, **overrides}}


def test_a_job_may_hold_exactly_twice_the_minimum_less_one() -> None:
    config = accepted(batch_inference(minRecordsPerJob=100, maxRecordsPerJob=199))
    assert config.batch_inference is not None and config.batch_inference.max_records_per_job == 199


def test_a_job_maximum_below_twice_the_minimum_less_one_is_refused_with_the_figure() -> None:
    message = error_for(batch_inference(minRecordsPerJob=100, maxRecordsPerJob=198))
    assert ("ai-pipelines:batchInference: maxRecordsPerJob 198 is below 2 x minRecordsPerJob - 1 = 199: a short "
            "tail could not join the shard before it") in message


@pytest.mark.parametrize("model_id", [
    "anthropic.claude-3-haiku-20240307-v1:0", "amazon.nova-lite-v1:0", "meta.llama3-8b-instruct-v1:0",
    # The model id pattern also lets a geography-prefixed id through when it has no version: its family is the one
    # after the geography, as for the inference profile ids the sharder is given.
    "us.amazon.nova-lite-v1", "eu.anthropic.claude-v2", "us.meta.llama3-8b-instruct-v1"])
def test_native_requests_are_accepted_for_the_families_the_sharder_builds_them_for(model_id: str) -> None:
    raw = batch_inference(requestFormat="native", model={**BATCH["model"], "modelId": model_id})
    try:
        model_family(model_id)
    except ValueError:
        assert (f"ai-pipelines:batchInference: model.modelId {model_id}: requestFormat native builds the native "
                "request of anthropic and amazon.nova models only; use requestFormat converse") in error_for(raw)
    else:
        config = accepted(raw)
        assert config.batch_inference is not None and config.batch_inference.request_format == "native"


def test_a_shard_file_may_hold_exactly_twice_the_minimum_of_the_longest_records() -> None:
    # 2 x 8 records x 64 KiB = 1 MiB, the smallest maxFileBytes.
    config = accepted(batch_inference(minRecordsPerJob=8, maxRecordBytes=65_536, maxFileBytes=1 << 20))
    assert config.batch_inference is not None and config.batch_inference.max_file_bytes == 1 << 20
    message = error_for(batch_inference(minRecordsPerJob=8, maxRecordBytes=65_537, maxFileBytes=1 << 20))
    assert ("ai-pipelines:batchInference: maxFileBytes 1048576 is below 2 x minRecordsPerJob x maxRecordBytes = "
            "1048592: a shard could not hold its minimum plus a merged tail") in message


@pytest.mark.parametrize(("timeout_hours", "days", "needed"), [(24, 18, 432), (168, 30, 720)])
@pytest.mark.parametrize("key", ["intermediateRetentionDays", "corpusRetentionDays", "resultRetentionDays"])
def test_what_a_redriven_run_reads_outlives_the_run_and_its_redrive_period(
        key: str, timeout_hours: int, days: int, needed: int) -> None:
    # `needed` = 14 days of redrive (336 h) + the look-back, 2 x (jobTimeoutHours + 24 h of queueing).
    lookback = needed - 336
    message = error_for(batch_inference(**{key: days, "jobTimeoutHours": timeout_hours}))
    assert (f"ai-pipelines:batchInference: {key} {days} must be longer than a run may last ({lookback} h = 2 x "
            f"(jobTimeoutHours {timeout_hours} + 24)) plus the 14 days in which it can be redriven, {needed} h in all "
            f"(at least {days + 1} days): a redriven run would miss what it reads") in message
    config = accepted(batch_inference(**{key: days + 1, "jobTimeoutHours": timeout_hours}))
    assert config.batch_inference is not None


def test_corpora_and_results_may_be_kept_forever() -> None:
    config = accepted(batch_inference(corpusRetentionDays="forever", resultRetentionDays="forever"))
    assert config.batch_inference is not None
    assert (config.batch_inference.corpus_retention_days, config.batch_inference.result_retention_days) == (
        "forever", "forever")


def test_the_sync_worker_may_use_its_whole_budget() -> None:
    # 28 rounds of one record, one attempt of 30 s, no backoff: 840 s, the worker's 900 s less 60 s to settle.
    config = accepted(batch_inference(itemsPerBatch=28, recordConcurrency=1, maxAttempts=1))
    assert config.batch_inference is not None and config.batch_inference.items_per_batch == 28
    message = error_for(batch_inference(itemsPerBatch=29, recordConcurrency=1, maxAttempts=1))
    assert ("itemsPerBatch 29 / recordConcurrency 1 = 29 round(s) of up to (maxAttempts 1 x "
            "model.requestTimeoutSeconds 30 s + 0 s of backoff) = 870 s exceeds the worker's 840 s") in message


@pytest.mark.parametrize("profile", [f"eu.{BATCH['model']['modelId']}", f"global.{BATCH['model']['modelId']}"])
def test_an_inference_profile_of_the_configured_model_in_a_geography_is_accepted(profile: str) -> None:
    config = accepted(batch_inference(model={**BATCH["model"], "inferenceProfileId": profile,
                                             "inferenceProfileRegions": ["eu-west-1", "eu-central-1"]}))
    assert config.batch_inference is not None and config.batch_inference.model.invoked_id == profile


@pytest.mark.parametrize("profile", ["eu.amazon.nova-lite-v1:0", f"mars.{BATCH['model']['modelId']}"])
def test_an_inference_profile_of_another_model_or_geography_is_refused(profile: str) -> None:
    message = error_for(batch_inference(model={**BATCH["model"], "inferenceProfileId": profile,
                                               "inferenceProfileRegions": ["eu-west-1"]}))
    assert (f"ai-pipelines:batchInference.model: inferenceProfileId {profile} must be "
            f"<geography>.{BATCH['model']['modelId']} with a geography in us, eu, apac") in message


# --- the stack as a whole ---------------------------------------------------------------------------------------

def test_key_readers_need_the_customer_managed_key() -> None:
    config = accepted({"encryption": "customer-managed", "keyReaders": [f"{ROLE}kb-service"]})
    assert config.key_readers == (f"{ROLE}kb-service",)
    message = error_for({"keyReaders": [f"{ROLE}kb-service"]})
    assert ("ai-pipelines: keyReaders is set but encryption is aws-managed: there is no stack key to admit them "
            "to") in message


def test_batch_results_need_batch_inference_enabled_in_the_stack() -> None:
    subscribed = kb(batchResults=True)
    config = accepted({**subscribed, **batch_inference()})
    assert config.knowledge_base_sync is not None and config.knowledge_base_sync.batch_results
    for without in ({}, batch_inference(enabled=False)):
        assert ("ai-pipelines: knowledgeBaseSync.batchResults subscribes to the batch-inference result bus, but "
                "batchInference is not enabled in this stack") in error_for({**subscribed, **without})


# --- sections shared by the pipelines ---------------------------------------------------------------------------

def test_role_arns_named_twice_are_listed_once_each_and_alone() -> None:
    twice, once = f"{ROLE}kb-service", f"{ROLE}consumer"
    message = error_for({"encryption": "customer-managed", "keyReaders": [twice, once, twice]})
    (line,) = [line for line in message.splitlines() if "keyReaders" in line]
    assert line.endswith(f": duplicate IAM role ARNs: {twice}")


def test_a_batch_above_ten_needs_a_window_of_one_second_at_least() -> None:
    config = accepted(kb(worker={"batchSize": 11, "batchingWindowSeconds": 1}))
    assert config.knowledge_base_sync is not None
    assert config.knowledge_base_sync.worker.batching_window_seconds == 1
    message = error_for(kb(worker={"batchSize": 11, "batchingWindowSeconds": 0}))
    assert "batchSize 11 is above 10, which needs batchingWindowSeconds >= 1 (got 0)" in message


def test_alarm_emails_are_addresses() -> None:
    config = accepted({"alarms": {"emails": ["oncall@example.com"]}})
    assert config.alarms.emails == ("oncall@example.com",)
    message = error_for({"alarms": {"emails": ["oncall@example.com", "oncall", "a b@example.com"]}})
    assert 'ai-pipelines:alarms.emails = ["oncall@example.com", "oncall", "a b@example.com"]: not an email address: ' \
           "oncall, a b@example.com" in message


@pytest.mark.parametrize(("keys", "named"), [
    ({"noncurrentVersionDays": 30}, "noncurrentVersionDays"),
    ({"objectRetentionDays": "forever"}, "objectRetentionDays"),
    ({"objectRetentionDays": 30, "noncurrentVersionDays": 7}, "noncurrentVersionDays and objectRetentionDays"),
])
def test_an_existing_buckets_lifecycle_is_refused_naming_the_keys(keys: dict, named: str) -> None:
    message = error_for(kb(bucket={"existingName": "team-documents", **keys}))
    assert (f"ai-pipelines:knowledgeBaseSync.bucket: {named} set with existingName team-documents: the lifecycle of "
            "an existing bucket is its owner's") in message


def test_an_existing_bucket_without_lifecycle_keys_is_accepted() -> None:
    config = accepted(kb(bucket={"existingName": "team-documents"}))
    assert config.knowledge_base_sync is not None
    assert config.knowledge_base_sync.bucket.existing_name == "team-documents"


# --- one existing bucket shared by two pipelines ----------------------------------------------------------------

SHARED = {"existingName": "shared-landing"}


def shared_bucket(document_prefix: str) -> dict:
    return {"knowledgeBaseSync": {**KB, "bucket": SHARED, "documentPrefix": document_prefix},
            **file_ingestion(bucket=SHARED)}


def test_pipelines_sharing_a_bucket_under_disjoint_prefixes_are_accepted() -> None:
    assert accepted(shared_bucket("documents/")).enabled_pipelines == ["knowledgeBaseSync", "fileIngestion"]


def test_pipelines_sharing_a_bucket_under_overlapping_prefixes_are_refused() -> None:
    message = error_for(shared_bucket("input/"))
    assert ("ai-pipelines: bucket shared-landing: the notification of fileIngestion (prefix 'input/', suffix "
            "'.json') overlaps that of knowledgeBaseSync (prefix 'input/', suffix '')") in message


# --- how a problem is reported -----------------------------------------------------------------------------------

def test_an_unknown_key_far_from_any_is_answered_with_the_valid_ones() -> None:
    message = error_for(kb(worker={"zzzz": 1}))
    assert ("ai-pipelines:knowledgeBaseSync.worker.zzzz: unknown key; valid keys: batchSize, batchingWindowSeconds, "
            "errors, maxConcurrency, memoryMb, reservedConcurrency, timeoutSeconds") in message


def test_an_unknown_key_in_an_item_of_a_list_is_answered_with_the_items_keys() -> None:
    message = error_for(file_ingestion(inputRules=[{"prefix": "input/", "sufix": ".json"}]))
    assert "ai-pipelines:fileIngestion.inputRules.0.sufix: unknown key; did you mean 'suffix'?" in message


def test_example_ids_stop_a_stack_outside_the_example_account() -> None:
    example = accepted({"exampleValues": True})
    refuse_example_values(example, EXAMPLE_ACCOUNT, "dev")
    refuse_example_values(accepted({}), "210987654321", "prod")
    with pytest.raises(ConfigError) as raised:
        refuse_example_values(example, "210987654321", "prod")
    assert str(raised.value).startswith("Pulumi.prod.yaml: ai-pipelines:exampleValues is true, so this stack file "
                                        "carries example ids")
    assert "account 210987654321 is real" in str(raised.value)


# --- structured values as the Pulumi runtime holds them ---------------------------------------------------------

def test_a_malformed_json_section_is_refused_naming_the_key_and_the_text() -> None:
    message = error_for({"knowledgeBaseSync": '{"knowledgeBaseId": "KB12345678",'})
    assert ('ai-pipelines:knowledgeBaseSync = "{\\"knowledgeBaseId\\": \\"KB12345678\\",": Input should be a valid '
            "dictionary") in message


# --- event processing: an idempotency record outlives every redelivery -------------------------------------------

def _events_keeping_keys(ttl_seconds: int) -> dict:
    # 120 s timeout: 720 s visibility; 6 receives: SQS may redeliver for 4,320 s
    return {"eventProcessing": {**EVENTS, "worker": {**EVENT_WORKER, "batchSize": 5}, "recordConcurrency": 4,
                                "queue": {"maxReceiveCount": 6}, "idempotency": {"ttlSeconds": ttl_seconds}}}


def test_idempotency_records_may_live_exactly_as_long_as_sqs_redelivers() -> None:
    config = accepted(_events_keeping_keys(4320))
    assert config.event_processing is not None and config.event_processing.idempotency.ttl_seconds == 4320


def test_idempotency_records_one_second_shorter_are_refused_with_the_redelivery_time() -> None:
    message = error_for(_events_keeping_keys(4319))
    assert ("ai-pipelines:eventProcessing: idempotency.ttlSeconds 4319 is below the time SQS keeps redelivering a "
            "message (720 s visibility x 6 receives = 4320 s): a late copy would call the model again") in message


# --- file ingestion: Aurora names its own host and database -----------------------------------------------------

@pytest.mark.parametrize("given", [{"host": "db.internal"}, {"name": "ingest"}])
def test_aurora_with_a_host_or_a_name_of_its_own_is_refused(given: dict) -> None:
    message = error_for({"fileIngestion": {"database": {**AURORA, **given}}})
    assert "aurora.enabled: host and name come from the cluster; remove host and name" in message


# --- the settings themselves ---------------------------------------------------------------------------------------

def test_a_validated_config_cannot_be_changed_afterwards() -> None:
    """Every component reads the one validated config: a component that changed a value would change it for the
    others, past the rules that accepted it."""
    config = accepted({"eventProcessing": {**EVENTS, "worker": {**EVENT_WORKER, "batchSize": 5},
                                           "recordConcurrency": 4}})
    assert config.event_processing is not None
    with pytest.raises(ValidationError, match="frozen"):
        config.event_processing.worker.memory_mb = 10240  # type: ignore[misc]


@pytest.mark.parametrize(("runtime", "version"), [("python3.12", "3.12"), ("python3.13", "3.13")])
def test_the_runtime_names_the_python_version_functions_are_packaged_for(runtime: str, version: str) -> None:
    config = accepted({"lambda": {"runtime": runtime}})
    assert config.lambda_.python_version == version


def test_every_unknown_key_is_named_not_only_the_first() -> None:
    message = error_for(kb(queue={"maxRecieveCount": 5}, worker={"timeout": 30}))
    assert "ai-pipelines:knowledgeBaseSync.queue.maxRecieveCount: unknown key" in message
    assert "ai-pipelines:knowledgeBaseSync.worker.timeout: unknown key" in message
