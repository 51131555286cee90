"""Steps of a run, as the state machine would take them, for the handler tests."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from batch_inference import jobs, sharder
from tests.handlers.batch_inference.conftest import INPUT_BUCKET, JOB_PREFIX, OUTPUT_BUCKET, RUN, Invoke, Storage
from tests.handlers.batch_inference.fakes import FakeBedrock, job_arn

CORPUS = "corpus/tickets 2026+été.jsonl"  # a key with a space, a plus and non-ASCII characters


def small_jobs(monkeypatch: pytest.MonkeyPatch, minimum: int = 3, maximum: int = 6) -> None:
    """Per-job quotas small enough for a few records to make several shards."""
    monkeypatch.setattr(sharder, "settings", replace(sharder.settings, min_records=minimum, max_records=maximum))


def records(count: int, start: int = 0) -> list[str]:
    return [json.dumps({"id": f"DOC{i:04d}", "text": f"Ticket {i}: the parcel arrived late."})
            for i in range(start, start + count)]


def shard(invoke: Invoke, storage: Storage, lines: list[str | bytes], *, run: str = RUN,
          corpus: str = CORPUS) -> dict[str, Any]:
    storage.put_corpus(corpus, lines)
    output: dict[str, Any] = invoke("sharder", {"runId": run, "corpusKey": corpus})
    return output


def first_shard(invoke: Invoke, storage: Storage, monkeypatch: pytest.MonkeyPatch, count: int = 8) -> dict[str, Any]:
    """The first shard of a corpus of `count` records, cut under quotas small enough to make several."""
    small_jobs(monkeypatch)
    return shard_list(storage, shard(invoke, storage, records(count)))[0]


def submitted_shard(invoke: Invoke, storage: Storage, bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch,
                    count: int = 8) -> tuple[dict[str, Any], list[str]]:
    """The first shard and its record ids, its job submitted (Map child task token "token-1")."""
    descriptor = first_shard(invoke, storage, monkeypatch, count)
    submit(invoke, bedrock, descriptor, "token-1")
    return descriptor, shard_ids(storage, descriptor)


def shard_list(storage: Storage, output: dict[str, Any]) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(storage.read(INPUT_BUCKET, output["shardList"]["key"]))
    return listed


def shard_ids(storage: Storage, descriptor: dict[str, Any]) -> list[str]:
    return [json.loads(line)["recordId"] for line in storage.read(INPUT_BUCKET, descriptor["key"]).splitlines()]


def job_of(descriptor: dict[str, Any], run: str = RUN) -> tuple[str, str, str]:
    """(job name, client request token, a job ARN) of a shard."""
    shard_id = descriptor["shardId"]
    return (jobs.job_name(JOB_PREFIX, run, shard_id), jobs.client_request_token(run, shard_id),
            job_arn(f"job{int(shard_id):05d}abcd"[:12]))


def uris(descriptor: dict[str, Any], run: str = RUN) -> tuple[str, str]:
    return (f"s3://{INPUT_BUCKET}/{descriptor['key']}",
            f"s3://{OUTPUT_BUCKET}/bedrock-output/{run}/{descriptor['shardId']}/")


def submit(invoke: Invoke, bedrock: FakeBedrock, descriptor: dict[str, Any], token: str,
           run: str = RUN) -> dict[str, Any]:
    """The Map child's SubmitAndWait: Bedrock accepts the job (the same ARN for the same token)."""
    name, request_token, arn = job_of(descriptor, run)
    input_uri, output_uri = uris(descriptor, run)
    bedrock.creates(name=name, token=request_token, arn=arn, input_uri=input_uri, output_uri=output_uri, run_id=run)
    result: dict[str, Any] = invoke("submitter", {"runId": run, "shard": descriptor, "taskToken": token})
    return result


def describe(bedrock: FakeBedrock, descriptor: dict[str, Any], status: str, run: str = RUN,
             message: str = "") -> None:
    name, _, arn = job_of(descriptor, run)
    input_uri, output_uri = uris(descriptor, run)
    bedrock.describes(arn=arn, name=name, status=status, input_uri=input_uri, output_uri=output_uri,
                      message=message)
