"""Finalizer: ``batch_inference.finalizer.handler``, the state machine's last Task (both modes, success or not).

Input ``{"status": "SUCCEEDED"|"FAILED", "runId", "corpusKey", "sharding": <the sharder's output> | absent,
"map": <the Map's output> | absent, "error": {Error, Cause} | absent}``.

On success it reads the Map's ResultWriter manifest and result files, adds up the children's counts and settles
the records of children that failed for good (within the tolerated threshold): records nobody settled go to the
failure lane (ledger-gated, so a record its shard or batch already sent is not sent again), and a mode B batch's
answers kept in the ledger are still written. It writes ``<RUNS_PREFIX><runId>/manifest.json`` and publishes
``BatchRunCompleted`` on the result bus, claimed in the jobs table first so a retried finalizer publishes once.
With a deadline, both say which shards switched to synchronous calls to meet it (``deadline``: the time and
``shardsSwitchedToSync``; such a child's output holds its own Map's ResultWriterDetails, whose batches are counted
and settled as mode B's). Both carry the run's input and output tokens (``tokens``: in all, and by batch jobs and
on-demand calls, from the children's counts) and, with TOKEN_PRICES, its estimated cost (``cost``, `usage.cost`).

A run that ends unsuccessfully (the sharder failed, a Map's threshold tripped, the execution timed out or was
aborted) never reaches this Task: `run_ended` reports it through `finalize` with that status and the error, so the
next stage knows; its records stay in their shards for a redrive, which the ledger keeps from doubling anything.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from batch_inference import clients, jobs, usage
from batch_inference.config import FinalizerSettings
from batch_inference.exceptions import PublicationBusyError, PublicationFailedError
from batch_inference.joining import batch_key, jsonl_lines, result_line, shard_record_ids
from batch_inference.lane import LaneRecord
from batch_inference.ledger import Claim, Ledger
from batch_inference.settle import Counts, settle_unit
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
    # Tokens by how they are billed: a batch job's at batch prices, a synchronous call's on demand.
    tokens = {name: usage.Tokens() for name in usage.LANES}
    switched: list[str] = []  # shards that ran as synchronous calls to meet the deadline

    def add_results(details: dict[str, Any], unit_mode: str) -> None:
        nonlocal failed_units
        unit_lane = "batch" if unit_mode == "batch" else "onDemand"
        for entry in _map_results(details):
            if entry.get("Status") == "SUCCEEDED":
                output = json.loads(entry.get("Output") or "{}")
                if unit_mode == "batch" and isinstance(output.get("switched"), dict):
                    switched.append(str(output.get("shard", {}).get("shardId")))
                    add_results(output["switched"]["ResultWriterDetails"], "sync")  # its batches, on demand
                    continue
                unit_counts = output.get("counts", {})
                _add(totals, unit_counts)
                tokens[unit_lane] = tokens[unit_lane] + usage.Tokens.of_counts(unit_counts)
            else:
                failed_units += 1
                unit = json.loads(entry.get("Input") or "{}")
                settled = settle_failed_unit(run_id, unit_mode, unit, entry.get("Error", ""), entry.get("Cause", ""))
                _add(totals, settled.counts.as_dict())
                # Kept answers are synchronous calls' (a failed mode B batch, a switched shard's), billed on demand.
                tokens["onDemand"] = tokens["onDemand"] + settled.kept
                if unit_mode == "batch" and settled.switched:
                    switched.append(str(unit.get("shard", {}).get("shardId")))

    if request.status == "SUCCEEDED" and request.map and "ResultWriterDetails" in request.map:
        add_results(request.map["ResultWriterDetails"], mode)
    shard_counts = sharding.counts if sharding else {}
    used = usage.usage_report(tokens)
    counts = {**{name: getattr(totals, name) for name in _COUNTED}, "rejected": shard_counts.get("rejected", 0),
              "failedUnits": failed_units, usage.INPUT: used[usage.INPUT], usage.OUTPUT: used[usage.OUTPUT]}
    succeeded = request.status == "SUCCEEDED"
    storage = settings.storage
    manifest_key = f"{settings.runs_prefix}{run_id}/manifest.json"
    detail = {"runId": run_id, "status": request.status, "mode": mode,
              "corpus": {"bucket": storage.input_bucket, "key": request.corpusKey},
              "counts": counts if succeeded else None,
              "tokens": used if succeeded else None,
              "cost": usage.cost(tokens, settings.prices) if succeeded else None,
              "output": {"bucket": storage.output_bucket, "resultsPrefix": f"{storage.results_prefix}{run_id}/",
                         "manifestKey": manifest_key},
              "error": request.error}
    run_deadline = sharding.deadline if sharding else None
    if run_deadline is not None or switched:
        # Which shards ran as synchronous calls because their jobs would have ended after the deadline.
        detail["deadline"] = {"at": run_deadline, "shardsSwitchedToSync": sorted(switched)}
    manifest = json.dumps({**detail, "sharding": shard_counts}, indent=2).encode()
    outcome = publish(run_id, detail, ending_of(request), manifest=manifest, manifest_key=manifest_key)
    if outcome == jobs.CLAIMED:
        metrics.add_metric(name="RunsCompleted" if request.status == "SUCCEEDED" else "RunsFailed",
                           unit=MetricUnit.Count, value=1)
    logger.info("Run finished", extra={"status": request.status, "counts": counts, "publication": outcome})
    return {"runId": run_id, "status": request.status, "counts": counts, "manifestKey": manifest_key,
            "publication": outcome}


def ending_of(request: FinalizeRequest) -> str:
    """What the run's publication is claimed under: its success, or one unsuccessful attempt (a redrive may end
    another way, and the next stage must hear of that too)."""
    return request.status if request.status == jobs.SUCCEEDED else f"{request.status}#{request.attempt}"


def publish(run_id: str, detail: dict[str, Any], ending: str, *, manifest: bytes, manifest_key: str) -> str:
    """Write the run's manifest and put its completion event for `ending`, once: claim, write, put, mark. Returns
    the claim's outcome (jobs.CLAIMED when this call published); raises `PublicationBusyError` while another copy
    holds the claim."""
    table = jobs.JobsTable(clients.dynamodb(), settings.jobs_table, settings.records.ledger_ttl_seconds)
    token = uuid.uuid4().hex
    outcome = table.claim_publication(run_id, ending, token)
    if outcome == jobs.BUSY:
        raise PublicationBusyError(f"the {ending} ending of run {run_id} is being published by another copy")
    if outcome != jobs.CLAIMED:
        logger.info("Completion event not published", extra={"ending": ending, "because": outcome})
        return outcome
    try:
        clients.s3().put_object(Bucket=settings.storage.output_bucket, Key=manifest_key,
                                ContentType="application/json", Body=manifest)
        response = clients.events().put_events(Entries=[{
            "Source": settings.result_source, "DetailType": DETAIL_TYPE, "EventBusName": settings.result_bus,
            "Detail": json.dumps(detail)}])
        if response.get("FailedEntryCount", 0):
            entry = response["Entries"][0]
            raise PublicationFailedError(f"EventBridge refused {DETAIL_TYPE}: {entry.get('ErrorCode')}: "
                                         f"{entry.get('ErrorMessage')}")
    except Exception:
        table.release_publication(run_id, ending, token)  # the retry may claim it at once
        raise
    try:
        table.mark_published(run_id, ending, token, str(response["Entries"][0].get("EventId", "")))
    except ClientError as error:  # the event is out: failing now would report an ending after it (or twice)
        logger.error("Published, but not marked so; the claim runs out by itself",
                     extra={"ending": ending, "error": error.response["Error"]["Code"]})
    return outcome


@dataclass(frozen=True)
class FailedUnit:
    counts: Counts
    kept: usage.Tokens  # the tokens of the answers kept (synchronous answers; a stopped job's are not known)
    switched: bool = False  # a mode A shard that had switched to synchronous calls


def settle_failed_unit(run_id: str, mode: str, unit: dict[str, Any], error: str, cause: str) -> FailedUnit:
    """Settle the records of a Map child that failed for good; its earlier settlements stand.

    A record its unit settled as succeeded stays succeeded (a mode B batch's kept answers are written here); every
    other record goes to the failure lane. A mode A shard is settled under its lease, and marked settled, so a job
    completing after its child gave up (or still running: it is stopped) writes nothing the lane already holds.
    A shard switched to synchronous calls (`_settle_shard`) is settled from its batches' claims.
    """
    ledger = Ledger(clients.dynamodb(), settings.records.ledger_table, settings.records.ledger_ttl_seconds, run_id)
    detail = f"{error}: {cause}"[:500]
    if mode == "batch":
        shard = unit.get("shard", {})
        switched = _give_up_shard(run_id, str(shard["shardId"]))
        return FailedUnit(*_settle_shard(ledger, shard, detail), switched=switched)
    order = [str(item["recordId"]) for item in unit.get("Items", [])]
    return FailedUnit(*_settle_batch(ledger, order, batch_key(list(dict.fromkeys(order))), detail))


def _settle_shard(ledger: Ledger, shard: dict[str, Any], detail: str) -> tuple[Counts, usage.Tokens]:
    """Settle a failed mode A child's shard. When it was switched to synchronous calls, its inner Map's results
    went with the child, but each batch that ran left its claims (``<runId>/b-<key>``, with this shard's id): a
    record one of them holds is settled as that batch would be settled had it failed (its kept answer written
    unless the batch wrote its results, its tokens counted; anything else to the failure lane once). What no batch
    claimed (never ran) goes to the failure lane under the shard; the same id held elsewhere in the run is a
    duplicate, as in any unit."""
    run_id, shard_id = ledger.run_id, str(shard["shardId"])
    body = clients.s3().get_object(Bucket=shard["bucket"], Key=shard["key"])["Body"]
    order = shard_record_ids(jsonl_lines(body.iter_chunks(1 << 20)))
    owner = f"{run_id}/{shard_id}"
    claims = ledger.claim_all(order, owner)
    batches: dict[str, list[str]] = {}  # holder -> its records, in shard order (repeats included)
    for record_id in order:
        claim = claims[record_id]
        if not claim.mine and claim.shard == shard_id and claim.holder and claim.holder.startswith(f"{run_id}/b-"):
            batches.setdefault(claim.holder, []).append(record_id)
    held = {record_id for ids in batches.values() for record_id in ids}
    rest = [record_id for record_id in order if record_id not in held]
    source: dict[str, Any] = {"bucket": shard["bucket"], "key": shard["key"]}
    counts, tokens = _settle_records(ledger, rest, owner, detail, source, results_key=None,
                                     claims={r: claims[r] for r in rest})
    for holder, ids in batches.items():
        batch_counts, kept = _settle_batch(ledger, ids, holder.removeprefix(f"{run_id}/b-"), detail)
        counts, tokens = counts + batch_counts, tokens + kept
    return counts, tokens


def _settle_batch(ledger: Ledger, order: list[str], key: str, detail: str) -> tuple[Counts, usage.Tokens]:
    """Settle a failed mode B batch (`key`) as its own owner: its kept answers written, the rest to the lane."""
    run_id = ledger.run_id
    return _settle_records(ledger, order, f"{run_id}/b-{key}", detail, {},
                           results_key=f"{settings.storage.results_prefix}{run_id}/batch-{key}.jsonl")


def _settle_records(ledger: Ledger, order: list[str], owner: str, detail: str, source: dict[str, Any], *,
                    results_key: str | None, claims: dict[str, Claim] | None = None) -> tuple[Counts, usage.Tokens]:
    """Settle a failed unit's records; with `results_key` (mode B), write the answers its batch kept unless that
    object is there (the batch wrote it). Returns the counts and the tokens of those answers (Converse usage)."""
    if claims is None:
        claims = ledger.claim_all(order, owner)
    succeeded = {r for r, c in claims.items() if c.mine and c.outcome == "succeeded"}
    kept = {r: json.loads(c.output) for r, c in claims.items() if r in succeeded and c.output}
    failures = {r: LaneRecord(ledger.run_id, "unit", "unit_failed", detail, dedupe_key=r, record_id=r, **source)
                for r in order if r not in succeeded}
    settlement = settle_unit(ledger, clients.sqs(), settings.records.failure_lane_url, owner=owner, order=order,
                             succeeded=succeeded, failures=failures, claims=claims, source=source or None)
    answered = [r for r in settlement.succeeded if r in kept]
    if answered and results_key is not None:  # mode A's successes were written by the completion handler
        body = b"".join(result_line(r, kept[r].get("output"), kept[r].get("text")) for r in answered)
        _write_once(results_key, body)
    logger.warning("Settled the records of a failed unit", extra={"owner": owner, "detail": detail,
                                                                   "counts": settlement.counts.as_dict()})
    tokens = usage.total(kept[r].get("output") for r in answered) if results_key is not None else usage.Tokens()
    return settlement.counts, tokens


def _write_once(key: str, body: bytes) -> None:
    """Write a batch's results object unless it is there: the batch wrote it before its unit failed, or an earlier
    attempt of this settlement did (S3's conditional write: If-None-Match)."""
    for attempt in range(2):
        try:
            clients.s3().put_object(Bucket=settings.storage.output_bucket, Key=key, ContentType="application/jsonl",
                                    Body=body, IfNoneMatch="*")
            return
        except ClientError as error:
            code = error.response["Error"]["Code"]
            # 409: a write of the same key raced this one, and S3 asks for a retry (then 412 if that one wrote it)
            if code == "ConditionalRequestConflict" and attempt == 0:
                continue
            if code != "PreconditionFailed":  # 412: the object is there
                raise
            logger.info("Results already written", extra={"key": key})
            return


def _give_up_shard(run_id: str, shard_id: str) -> bool:
    """Mark a failed child's shard settled (FAILED) under its lease, unless its job's completion settled it first,
    and stop its job if it still runs: a completion arriving later only resumes the (gone) child and writes nothing
    the failure lane already holds. A shard never submitted has no item and no job. Returns whether the shard had
    switched to synchronous calls (the run's manifest lists it)."""
    table = jobs.JobsTable(clients.dynamodb(), settings.jobs_table, settings.records.ledger_ttl_seconds)
    name = jobs.job_name(settings.job_name_prefix, run_id, shard_id)
    record = table.get(name)
    if record is None or record.status in jobs.SETTLED:
        return record is not None and record.switched
    with table.settling(name) as lease:  # its job's completion may have settled it meanwhile
        current = lease.record
        if current is None or current.status in jobs.SETTLED:
            return record.switched
        if current.job_arn:
            _stop(current.job_arn)
        lease.settle(jobs.FAILED, {}, current.job_arn or "")
    return record.switched


def _stop(job_arn: str) -> None:
    """Stop a job whose child gave up: its output would be settled by nobody. A job already finished refuses."""
    try:
        clients.bedrock().stop_model_invocation_job(jobIdentifier=job_arn)
    except ClientError as error:
        logger.info("Job not stopped", extra={"jobArn": job_arn, "error": error.response["Error"]["Code"]})


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
