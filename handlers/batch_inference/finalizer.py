"""Finalizer: ``batch_inference.finalizer.handler``, the state machine's last Task (both modes, success or not).

Input ``{"status": "SUCCEEDED"|"FAILED", "runId", "corpusKey", "sharding": <the sharder's output> | absent,
"map": <the Map's output> | absent, "error": {Error, Cause} | absent}``.

On success it reads the Map's ResultWriter manifest and result files, adds up the children's counts and settles
the records of children that failed for good (within the tolerated threshold): records nobody settled go to the
failure lane (ledger-gated, so a record its shard or batch already sent is not sent again), and a mode B batch's
answers kept in the ledger are still written. It writes ``<RUNS_PREFIX><runId>/manifest.json`` and publishes
``BatchRunCompleted`` on the result bus, claimed in the jobs table first so a retried finalizer publishes once.

A failed run (the sharder failed, or a Map's threshold tripped) publishes ``BatchRunCompleted`` with status FAILED
and the error, so the next stage knows; its records stay in their shards for a redrive, which the ledger keeps
from doubling anything.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_inference import clients, jobs
from batch_inference.config import FinalizerSettings
from batch_inference.exceptions import PublicationFailedError
from batch_inference.joining import result_line, shard_record_ids
from batch_inference.lane import LaneRecord
from batch_inference.ledger import Ledger
from batch_inference.settle import Counts, settle_unit
from batch_inference.sync_worker import batch_key
from batch_inference.tasks import FinalizeRequest, task_input

logger = Logger()
metrics = Metrics()
settings = FinalizerSettings.from_env()
DETAIL_TYPE = "BatchRunCompleted"
# What a run reports: the same on every attempt of the finalizer (sends are an attempt's detail, not the run's).
_COUNTED = ("records", "succeeded", "failed", "duplicates")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    request = task_input(event, FinalizeRequest, "finalizer input is not {status, sharding, map}")
    logger.append_keys(runId=request.runId, mode=request.sharding.mode if request.sharding else None)
    return finalize(request)


def finalize(request: FinalizeRequest) -> dict[str, Any]:
    sharding = request.sharding
    run_id = request.runId
    mode = sharding.mode if sharding else "none"
    totals = Counts()
    failed_units = 0
    if request.status == "SUCCEEDED" and request.map and "ResultWriterDetails" in request.map:
        for entry in _map_results(request.map["ResultWriterDetails"]):
            if entry.get("Status") == "SUCCEEDED":
                _add(totals, json.loads(entry.get("Output") or "{}").get("counts", {}))
            else:
                failed_units += 1
                _add(totals, settle_failed_unit(run_id, mode, json.loads(entry.get("Input") or "{}"),
                                                entry.get("Error", ""), entry.get("Cause", "")).as_dict())
    shard_counts = sharding.counts if sharding else {}
    counts = {**{name: getattr(totals, name) for name in _COUNTED}, "rejected": shard_counts.get("rejected", 0),
              "failedUnits": failed_units}
    storage = settings.storage
    manifest_key = f"{settings.runs_prefix}{run_id}/manifest.json"
    detail = {"runId": run_id, "status": request.status, "mode": mode,
              "corpus": {"bucket": storage.input_bucket, "key": request.corpusKey},
              "counts": counts if request.status == "SUCCEEDED" else None,
              "output": {"bucket": storage.output_bucket, "resultsPrefix": f"{storage.results_prefix}{run_id}/",
                         "manifestKey": manifest_key},
              "error": request.error}
    clients.s3().put_object(Bucket=storage.output_bucket, Key=manifest_key, ContentType="application/json",
                            Body=json.dumps({**detail, "sharding": shard_counts}, indent=2).encode())
    published = publish(run_id, detail)
    metrics.add_metric(name="RunsCompleted" if request.status == "SUCCEEDED" else "RunsFailed",
                       unit=MetricUnit.Count, value=1)
    logger.info("Run finished", extra={"status": request.status, "counts": counts, "published": published})
    return {"runId": run_id, "status": request.status, "counts": counts, "manifestKey": manifest_key}


def publish(run_id: str, detail: dict[str, Any]) -> bool:
    """Put the run's completion event once: claim, put, mark. False when it was published before."""
    table = jobs.JobsTable(clients.dynamodb(), settings.jobs_table, settings.records.ledger_ttl_seconds)
    if not table.claim_publication(run_id):
        logger.info("Completion event already published; not again")
        return False
    response = clients.events().put_events(Entries=[{
        "Source": settings.result_source, "DetailType": DETAIL_TYPE, "EventBusName": settings.result_bus,
        "Detail": json.dumps(detail)}])
    if response.get("FailedEntryCount", 0):
        entry = response["Entries"][0]
        raise PublicationFailedError(f"EventBridge refused {DETAIL_TYPE}: {entry.get('ErrorCode')}: "
                                     f"{entry.get('ErrorMessage')}")
    table.mark_published(run_id, str(response["Entries"][0].get("EventId", "")))
    return True


def settle_failed_unit(run_id: str, mode: str, unit: dict[str, Any], error: str, cause: str) -> Counts:
    """Settle the records of a Map child that failed for good; its earlier settlements stand."""
    ledger = Ledger(clients.dynamodb(), settings.records.ledger_table, settings.records.ledger_ttl_seconds)
    detail = f"{error}: {cause}"[:500]
    if mode == "batch":
        shard = unit.get("shard", {})
        order = shard_record_ids(clients.s3().get_object(Bucket=shard["bucket"], Key=shard["key"])["Body"]
                                 .iter_lines())
        owner = f"{run_id}/{shard['shardId']}"
        source: dict[str, Any] = {"bucket": shard["bucket"], "key": shard["key"]}
    else:
        order = list(dict.fromkeys(str(item["recordId"]) for item in unit.get("Items", [])))
        owner = f"{run_id}/b-{batch_key(order)}"
        source = {}
    claims = ledger.claim_all(order, owner, run_id)
    kept = {r: json.loads(c.output) for r, c in claims.items() if c.mine and c.outcome == "succeeded" and c.output}
    failures = {r: LaneRecord(run_id, "unit", "unit_failed", detail, dedupe_key=r, record_id=r, **source)
                for r in order if r not in kept}
    settlement = settle_unit(ledger, clients.sqs(), settings.records.failure_lane_url, owner=owner, run_id=run_id,
                             order=order, succeeded=set(kept), failures=failures, claims=claims)
    if settlement.succeeded and mode != "batch":
        body = b"".join(result_line(r, kept[r].get("output"), kept[r].get("text")) for r in settlement.succeeded)
        clients.s3().put_object(Bucket=settings.storage.output_bucket, ContentType="application/jsonl", Body=body,
                                Key=f"{settings.storage.results_prefix}{run_id}/batch-{batch_key(order)}.jsonl")
    logger.warning("Settled the records of a failed unit", extra={"owner": owner, "error": error,
                                                                   "counts": settlement.counts.as_dict()})
    return settlement.counts


def _map_results(details: dict[str, Any]) -> list[dict[str, Any]]:
    s3 = clients.s3()
    bucket = details["Bucket"]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=details["Key"])["Body"].read())
    entries: list[dict[str, Any]] = []
    for group in ("SUCCEEDED", "FAILED", "PENDING"):
        for file in manifest.get("ResultFiles", {}).get(group, []):
            entries += json.loads(s3.get_object(Bucket=bucket, Key=file["Key"])["Body"].read())
    return entries


def _add(totals: Counts, counts: dict[str, Any]) -> None:
    for name in _COUNTED:
        setattr(totals, name, getattr(totals, name) + int(counts.get(name, 0)))
