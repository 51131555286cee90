"""`python -m offline cost`: each service's line item against a hand computation from the stack's resources and
the volume profile, the profiles, volume files, and the command line.

Prices are eu-west-1's from offline/cost/prices.yaml (both stacks are in eu-west-1). A month is 730 hours
(30.4167 days); a GB is 1024 x 1024 KB.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from offline.cli import main
from offline.cost.estimators import Estimate, estimate
from offline.cost.inventory import Inventory, inventory, per_month
from offline.cost.lines import LineItem
from offline.cost.prices import PriceError, PriceTable, load_prices
from offline.cost.volumes import PROFILES, VolumeError, load_volumes, parse_volumes, profile
from offline.synth import synthesize

MONTH_DAYS = 730 / 24


@pytest.fixture(scope="module")
def dev() -> Inventory:
    return inventory(synthesize("dev", "preview"))


@pytest.fixture(scope="module")
def prod() -> Inventory:
    return inventory(synthesize("prod", "preview"))


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return load_prices("eu-west-1")


@pytest.fixture(scope="module")
def dev_medium(dev: Inventory, prices: PriceTable) -> Estimate:
    return estimate(dev, profile("medium"), prices)


def item(result: Estimate, pipeline: str, service: str, line: str) -> LineItem:
    bill = result.bill(pipeline)
    return bill.items[(service, line)]


# --- Lambda -----------------------------------------------------------------------------------------------------

def test_lambda_requests_and_gb_seconds_of_the_event_worker(dev_medium: Estimate) -> None:
    # eventproc-worker: 512 MB, arm64, event source batch size 10 (dev). Medium: 1,000,000 events, batches 90 %
    # full, 1.8 s per invocation.
    invocations = 1_000_000 / (10 * 0.9)  # 111,111.1
    gb_seconds = invocations * 1.8 * 512 / 1024  # 100,000
    assert gb_seconds == pytest.approx(100_000)
    requests = item(dev_medium, "eventProcessing", "Lambda", "requests (arm64)")
    duration = item(dev_medium, "eventProcessing", "Lambda", "GB-seconds (arm64)")
    assert requests.quantity == pytest.approx(invocations)
    assert requests.cost == pytest.approx(invocations * 0.20 / 1_000_000)  # $0.0222
    assert duration.quantity == pytest.approx(gb_seconds)
    assert duration.cost == pytest.approx(100_000 * 0.0000133334)  # $1.33


def test_lambda_x86_functions_are_priced_as_x86(prices: PriceTable) -> None:
    overrides = {"ai-pipelines:lambda": {"architecture": "x86_64"}}
    stack = inventory(synthesize("dev", "preview", config_overrides=overrides))
    result = estimate(stack, profile("medium"), prices)
    assert ("Lambda", "GB-seconds (arm64)") not in result.bill("eventProcessing").items
    duration = item(result, "eventProcessing", "Lambda", "GB-seconds (x86_64)")
    assert duration.cost == pytest.approx(100_000 * 0.0000166667)  # $1.67


def test_lambda_of_the_batch_inference_functions_follows_their_memory(dev_medium: Estimate) -> None:
    # Medium: 8 runs of 250,000 records; dev: batch mode (250,000 >= minRecordsPerJob 100), 50,000 records per
    # job -> 5 shards a run. sharder 2048 MB: 1 s + 250,000 / 500,000 records/s = 1.5 s; submitter 256 MB: 1 s per
    # shard; completion 3008 MB: 1 s + 50,000 / 60,000 s per shard; finalizer 1024 MB: 1 s per run;
    # reconciler 256 MB: rate(15 minutes) = 730 x 4 = 2,920 invocations of 1 s.
    gb_seconds = (8 * 1.5 * 2048 + 40 * 1 * 256 + 40 * (1 + 50_000 / 60_000) * 3008 + 8 * 1 * 1024
                  + 2920 * 1 * 256) / 1024
    requests = 8 + 40 + 40 + 8 + 2920
    assert item(dev_medium, "batchInference", "Lambda", "GB-seconds (arm64)").quantity == pytest.approx(gb_seconds)
    assert item(dev_medium, "batchInference", "Lambda", "requests (arm64)").quantity == pytest.approx(requests)


# --- SQS, EventBridge -------------------------------------------------------------------------------------------

def test_sqs_requests_of_event_processing(dev_medium: Estimate) -> None:
    # work queue: 1,000,000 sends (one 2 KB event = one 64 KB chunk) + a receive and a batch delete per batch
    # (111,111.1 batches); subscriber queue: 1,000,000 sends; the worker's event source polling all month:
    # 5 pollers x 730 h x 3,600 s / 20 s = 657,000 receives.
    requests = 1_000_000 + 2 * 1_000_000 / 9 + 1_000_000 + 5 * 730 * 3600 / 20
    line = item(dev_medium, "eventProcessing", "SQS", "requests")
    assert line.quantity == pytest.approx(requests)  # 2,879,222
    assert line.cost == pytest.approx(requests * 0.40 / 1_000_000)  # $1.15


def test_eventbridge_events_of_event_processing(dev_medium: Estimate) -> None:
    # 1,000,000 events on the input bus + 1,000,000 ProcessingCompleted on the result bus, $1 per million
    line = item(dev_medium, "eventProcessing", "EventBridge", "custom events")
    assert line.quantity == 2_000_000
    assert line.cost == pytest.approx(2.00)


def test_eventbridge_scheduler_invocations_come_from_the_schedule_expressions(dev_medium: Estimate) -> None:
    # dev knowledgeBaseSync: trigger both, rate(6 hours) -> 730 / 6 = 121.67 a month
    line = item(dev_medium, "knowledgeBaseSync", "EventBridge", "scheduler invocations")
    assert line.quantity == pytest.approx(730 / 6)
    assert per_month("rate(15 minutes)") == pytest.approx(2920)
    assert per_month("rate(1 day)") == pytest.approx(730 / 24)


def test_large_events_are_billed_in_64_kb_chunks(dev: Inventory, prices: PriceTable) -> None:
    # a 100 KB event is two 64 KB chunks: 2 x 1,000,000 on the input bus, 1,000,000 results
    volumes = parse_volumes({"eventProcessing": {"eventKb": 100}}, base="medium")
    line = item(estimate(dev, volumes, prices), "eventProcessing", "EventBridge", "custom events")
    assert line.quantity == 3_000_000


# --- DynamoDB ---------------------------------------------------------------------------------------------------

def test_dynamodb_writes_storage_and_pitr_of_event_processing(dev_medium: Estimate) -> None:
    # per event: idempotency record put in progress + updated completed, result put + marked published: 4 writes
    # of a 1 KB item = 4 WRU. Storage after one month: the results table (no TTL) holds 1,000,000 x 1 KB; the
    # idempotency table (TTL 86,400 s = 1 day) holds one day's: 1,000,000 x 1 KB x 1 / 30.4167. PITR: results only.
    writes = item(dev_medium, "eventProcessing", "DynamoDB", "write request units")
    assert writes.quantity == 4_000_000
    assert writes.cost == pytest.approx(4 * 0.70675)  # $2.83
    results_gb = 1_000_000 / 1024 / 1024  # 0.9537
    idempotency_gb = 1_000_000 * (1 / MONTH_DAYS) / 1024 / 1024  # 0.0314
    storage = item(dev_medium, "eventProcessing", "DynamoDB", "storage")
    assert storage.quantity == pytest.approx(results_gb + idempotency_gb)
    assert storage.cost == pytest.approx((results_gb + idempotency_gb) * 0.283)
    pitr = item(dev_medium, "eventProcessing", "DynamoDB", "point-in-time recovery")
    assert pitr.cost == pytest.approx(results_gb * 0.2264)


def test_dynamodb_reads_of_the_batch_jobs_table(dev_medium: Estimate) -> None:
    # 8 runs x 5 jobs x 2 consistent reads of items under 4 KB = 80 RRU
    reads = item(dev_medium, "batchInference", "DynamoDB", "read request units")
    assert reads.quantity == 80
    assert reads.cost == pytest.approx(80 * 0.1415 / 1_000_000)


# --- Step Functions ---------------------------------------------------------------------------------------------

def test_step_functions_transitions_follow_the_definition(dev_medium: Estimate) -> None:
    # a batch-mode run passes Shard, ChooseMode, SubmitShards, Finalize (4) and each of its 5 job children passes
    # SubmitAndWait (1): 9 a run, 72 for 8 runs, $0.025 per 1,000
    line = item(dev_medium, "batchInference", "Step Functions", "state transitions")
    assert line.quantity == 8 * (4 + 5 * 1)
    assert line.cost == pytest.approx(72 * 0.025 / 1000)


def test_sync_mode_below_the_job_minimum(dev: Inventory, prices: PriceTable) -> None:
    # auto mode, 60 records < minRecordsPerJob 100: synchronous. ceil(60 / 20 per batch) = 3 InferBatch children:
    # 4 + 3 transitions a run; tokens at the on-demand price
    volumes = parse_volumes({"batchInference": {"runsPerMonth": 10, "recordsPerRun": 60}}, base="medium")
    result = estimate(dev, volumes, prices)
    assert item(result, "batchInference", "Step Functions", "state transitions").quantity == 10 * (4 + 3)
    tokens = item(result, "batchInference", "Bedrock", "input tokens, on demand")
    assert tokens.cost == pytest.approx(10 * 60 * 800 * 0.25 / 1_000_000)


# --- S3 ---------------------------------------------------------------------------------------------------------

def test_s3_requests_and_storage_of_file_ingestion(dev_medium: Estimate) -> None:
    # 3,000,000 files of 20 KB: a PUT each by the producers, a GET each by the worker; kept a month
    assert item(dev_medium, "fileIngestion", "S3", "PUT requests").cost == pytest.approx(3_000_000 * 0.005 / 1000)
    assert item(dev_medium, "fileIngestion", "S3", "GET requests").cost == pytest.approx(3_000_000 * 0.0004 / 1000)
    gb = 3_000_000 * 20 / 1024 / 1024  # 57.22
    assert item(dev_medium, "fileIngestion", "S3", "storage").cost == pytest.approx(gb * 0.023)


# --- CloudWatch -------------------------------------------------------------------------------------------------

def test_cloudwatch_alarms_dashboards_metrics_and_logs_of_event_processing(dev_medium: Estimate) -> None:
    # dev eventproc alarms: worker error rate (metric math over Errors and Invocations: billed as 2 alarm metrics)
    # and throttles, work queue age and backlog, work DLQ, intake and completed undelivered, subscriber age and DLQ,
    # model throttles, invalid answers = 11 alarms, 12 alarm metrics; the pipeline's dashboard; the worker
    # publishes MessagesReceived and ResultsStored. Logs: 111,111.1 invocations x 4 KB; 14-day retention holds 14 days.
    assert item(dev_medium, "eventProcessing", "CloudWatch", "alarms").quantity == 12
    assert item(dev_medium, "eventProcessing", "CloudWatch", "alarms").cost == pytest.approx(12 * 0.10)
    assert item(dev_medium, "eventProcessing", "CloudWatch", "dashboards").cost == pytest.approx(3.00)
    assert item(dev_medium, "eventProcessing", "CloudWatch", "custom metrics").cost == pytest.approx(2 * 0.30)
    ingested = 1_000_000 / 9 * 4 / 1024 / 1024  # 0.424 GB
    assert item(dev_medium, "eventProcessing", "CloudWatch", "logs ingestion").cost == pytest.approx(ingested * 0.57)
    stored = ingested * 14 / MONTH_DAYS
    assert item(dev_medium, "eventProcessing", "CloudWatch", "logs storage").cost == pytest.approx(stored * 0.03)


def test_cloudwatch_alarms_and_metrics_of_knowledge_base_sync(dev_medium: Estimate) -> None:
    # dev kbsync alarms: changes queue age and DLQ, worker errors and throttles, failed scheduled runs, failed
    # ingestion jobs, failed ingestion documents, failed direct documents = 8. The worker publishes on its normal
    # path MessagesReceived, ScheduledRuns, IngestionJobsStarted, ObjectsCreated, ObjectsRemoved, BurstsDeferred,
    # DocumentsSubmittedCreated, DocumentsSubmittedRemoved, DirectDocumentsDone, IngestionJobsCompleted and
    # IngestionDocumentsFailed (0 on a clean job) = 11.
    assert item(dev_medium, "knowledgeBaseSync", "CloudWatch", "alarms").cost == pytest.approx(8 * 0.10)
    assert item(dev_medium, "knowledgeBaseSync", "CloudWatch", "custom metrics").cost == pytest.approx(11 * 0.30)


def test_metric_math_alarms_are_billed_per_metric_they_read(dev_medium: Estimate) -> None:
    # dev batchinf, 25 alarms. 23 read one metric each: failure lane age and DLQ (2), completion queue age and DLQ
    # (2), job-events undelivered (1), run-endings age, DLQ and undelivered (3), model throttles and output mismatches
    # (2), errors and throttles of sharder, submitter, completion, reconciler, finalizer and run-ended (12), the sync
    # worker's throttles (1). Two are metric math: runs-failed reads ExecutionsFailed, ExecutionsTimedOut and
    # ExecutionsAborted (3), the sync worker's error rate reads Errors and Invocations (2).
    single = 2 + 2 + 1 + 3 + 2 + 12 + 1
    assert single + 2 == 25
    alarms = item(dev_medium, "batchInference", "CloudWatch", "alarms")
    assert alarms.quantity == single + 3 + 2 == 28
    assert alarms.cost == pytest.approx(28 * 0.10)
    # one dashboard per pipeline, $3 each (before the account's three free dashboards)
    for pipeline in ("knowledgeBaseSync", "eventProcessing", "fileIngestion", "batchInference"):
        assert item(dev_medium, pipeline, "CloudWatch", "dashboards").cost == pytest.approx(3.00)


def test_log_storage_follows_the_stack_retention(prod: Inventory, prices: PriceTable) -> None:
    # prod keeps logs 90 days: after one month a month's logs are held, not 14 days'
    result = estimate(prod, profile("medium"), prices)
    ingested = item(result, "eventProcessing", "CloudWatch", "logs ingestion").quantity
    assert item(result, "eventProcessing", "CloudWatch", "logs storage").quantity == pytest.approx(ingested)


# --- VPC ---------------------------------------------------------------------------------------------------------

def test_the_secrets_manager_interface_endpoint_is_billed_per_zone_hour(dev_medium: Estimate) -> None:
    # dev fileingest creates a Secrets Manager interface endpoint in its 2 subnets (2 zones) and an S3 gateway
    # endpoint (free): 2 x 730 h x $0.011
    line = item(dev_medium, "fileIngestion", "VPC", "interface endpoint hours")
    assert line.quantity == 2 * 730
    assert line.cost == pytest.approx(2 * 730 * 0.011)  # $16.06


# --- KMS, Secrets Manager ---------------------------------------------------------------------------------------

def test_kms_key_and_requests(dev_medium: Estimate) -> None:
    # the alarm topic's customer managed key: $1; file ingestion: 30,000 invocations x 2 % cold starts = 600
    # GetSecretValue, each a Decrypt: 600 x $0.03 / 10,000
    assert item(dev_medium, "shared", "KMS", "keys").cost == pytest.approx(1.00)
    requests = item(dev_medium, "fileIngestion", "KMS", "requests")
    assert requests.quantity == pytest.approx(3_000_000 / 100 * 0.02)
    assert requests.cost == pytest.approx(600 * 0.03 / 10_000)


def test_prod_has_one_key_the_stack_key(prod: Inventory, prices: PriceTable) -> None:
    # encryption customer-managed: the stack's key encrypts every store and the alarm topic, which then has no key
    # of its own; one key, $1, under the shared resources (as in dev, where it is the alarm topic's).
    result = estimate(prod, profile("medium"), prices)
    keys = item(result, "shared", "KMS", "keys")
    assert (keys.quantity, keys.cost) == (1, pytest.approx(1.00))
    assert [b.pipeline for b in result.bills if ("KMS", "keys") in b.items] == ["shared"]


def test_secrets_manager_secret_and_calls(dev_medium: Estimate) -> None:
    # two secrets at $0.40 a month: the admin secret the stack creates and the loader's
    assert item(dev_medium, "fileIngestion", "Secrets Manager", "secrets").cost == pytest.approx(0.80)
    assert item(dev_medium, "fileIngestion", "Secrets Manager", "API calls").cost == pytest.approx(600 * 0.05 / 10_000)


# --- Bedrock ----------------------------------------------------------------------------------------------------

def test_bedrock_tokens_on_demand(dev_medium: Estimate) -> None:
    # 1,000,000 events x 720 input / 480 output tokens, Claude 3 Haiku: $0.25 / $1.25 per million
    assert item(dev_medium, "eventProcessing", "Bedrock", "input tokens, on demand").cost == pytest.approx(180.00)
    assert item(dev_medium, "eventProcessing", "Bedrock", "output tokens, on demand").cost == pytest.approx(600.00)


def test_bedrock_tokens_in_batch_are_half_price(dev_medium: Estimate) -> None:
    # 8 x 250,000 records x 800 input / 150 output tokens at 50 % of $0.25 / $1.25 per million
    assert item(dev_medium, "batchInference", "Bedrock", "input tokens, batch").cost == \
        pytest.approx(8 * 250_000 * 800 * 0.125 / 1_000_000)  # $200
    assert item(dev_medium, "batchInference", "Bedrock", "output tokens, batch").cost == \
        pytest.approx(8 * 250_000 * 150 * 0.625 / 1_000_000)  # $187.50


def test_an_inference_profile_is_priced_as_its_model(prod: Inventory, prices: PriceTable) -> None:
    assert prod.pipelines["eventproc"].function("worker").environment["MODEL_ID"].startswith("eu.")
    result = estimate(prod, profile("medium"), prices)
    assert item(result, "eventProcessing", "Bedrock", "input tokens, on demand").cost == pytest.approx(180.00)


def test_a_model_without_a_price_is_named(prices: PriceTable) -> None:
    with pytest.raises(PriceError, match=r"no Bedrock price for meta\.llama3-8b-instruct-v1:0 in eu-west-1"):
        prices.model("meta.llama3-8b-instruct-v1:0")


def test_a_region_without_prices_is_named() -> None:
    with pytest.raises(PriceError, match="no prices for region ap-south-1"):
        load_prices("ap-south-1")


# --- totals, profiles, volume files -----------------------------------------------------------------------------

def test_totals_add_up(dev_medium: Estimate) -> None:
    for bill in dev_medium.bills:
        assert bill.total == pytest.approx(sum(line.cost for line in bill.lines))
    assert dev_medium.total == pytest.approx(sum(bill.total for bill in dev_medium.bills))


def test_profiles_hold_the_reference_event_volumes_and_grow(dev: Inventory, prices: PriceTable) -> None:
    sizings = {name: profile(name).event_processing for name in PROFILES}
    assert [(s.events_per_month, s.input_tokens_per_event + s.output_tokens_per_event) for s in sizings.values()] == \
        [(50_000, 800), (1_000_000, 1_200), (25_000_000, 1_500)]
    assert all(s.input_tokens_per_event / (s.input_tokens_per_event + s.output_tokens_per_event) == 0.6
               for s in sizings.values())
    totals = [estimate(dev, profile(name), prices).total for name in ("small", "medium", "large")]
    assert totals == sorted(totals)
    assert profile("medium").file_ingestion.files_per_month == 100_000 * 30


def test_a_volume_file_overrides_the_profile(tmp_path: Path) -> None:
    path = tmp_path / "volumes.yaml"
    path.write_text("eventProcessing:\n  eventsPerMonth: 2000\n")
    volumes = load_volumes(path, base="small")
    assert volumes.event_processing.events_per_month == 2000
    assert volumes.event_processing.input_tokens_per_event == 480  # small's
    json_path = tmp_path / "volumes.json"
    json_path.write_text(json.dumps({"batchInference": {"recordsPerRun": 7}}))
    assert load_volumes(json_path).batch_inference.records_per_run == 7


@pytest.mark.parametrize(("content", "message"), [
    ("eventProcessing:\n  eventsPerMonthh: 5\n",
     r"eventProcessing\.eventsPerMonthh: unknown key; keys: .*eventsPerMonth"),
    ("eventProcessing:\n  eventsPerMonth: -5\n", r"eventProcessing\.eventsPerMonth = -5: .*greater than or equal to 0"),
    ("fileIngestion:\n  fileKb: lots\n", r"fileIngestion\.fileKb = \"lots\": .*valid number"),
    ("eventProcesing:\n  eventsPerMonth: 5\n", r"eventProcesing: unknown section; sections: shared, eventProcessing"),
    ("eventProcessing: 5\n", r"eventProcessing: expected a mapping, got int"),
    ("eventProcessing: [\n", r"not valid YAML"),
])
def test_a_bad_volume_file_is_refused_naming_the_key(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "volumes.yaml"
    path.write_text(content)
    with pytest.raises(VolumeError, match=message):
        load_volumes(path)


# --- the command ------------------------------------------------------------------------------------------------

def test_cost_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--stack", "dev", "--profile", "small", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["pipelines"]) == {"knowledgeBaseSync", "eventProcessing", "fileIngestion", "batchInference",
                                        "shared"}
    assert report["totalUsd"] == pytest.approx(sum(p["totalUsd"] for p in report["pipelines"].values()), abs=0.05)
    sizings = report["reference"]["eventProcessing"]
    assert [row["referenceUsd"] for row in sizings] == [80, 1_100, 28_000]
    assert all(line["priceUrl"].startswith("https://aws.amazon.com/") for p in report["pipelines"].values()
               for line in p["lines"])


def test_cost_command_text_names_every_pipeline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--stack", "prod", "--profile", "large"]) == 0
    out = capsys.readouterr().out
    for title in ("knowledgeBaseSync", "eventProcessing", "fileIngestion", "batchInference", "Total",
                  "Reference architecture 003", "Reference architecture 001"):
        assert title in out


def test_cost_command_bad_volume_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "volumes.yaml"
    path.write_text("batchInference:\n  recordsPerRun: many\n")
    assert main(["cost", "--stack", "dev", "--volume", str(path)]) == 2
    err = capsys.readouterr().err
    assert "batchInference.recordsPerRun" in err and "many" in err


def test_every_service_the_estimate_bills_has_a_hand_computed_line_above(dev_medium: Estimate, prod: Inventory,
                                                                          prices: PriceTable) -> None:
    # The services named in this module's `item(..., "<service>", ...)` checks, each against a hand computation.
    checked = set(re.findall(r'item\(\w+, "\w+", "([^"]+)", "', Path(__file__).read_text(encoding="utf-8")))
    billed = {line.service for result in (dev_medium, estimate(prod, profile("large"), prices))
              for bill in result.bills for line in bill.lines}
    assert billed - checked == set()
    assert len(checked) >= 11
