"""One harmless test item per pipeline: what ``smoke`` sends, how it recognises the result, how it cleans up.

* kbsync: a small text document under the watched prefix; result: an ingestion job started after it, COMPLETE.
  Deleting it afterwards triggers one more (harmless) sync.
* eventproc: one event of an accepted source and detail type with a unique itemId; result: the worker's log entry
  "Result stored and announced" for its event id and the result in the results table (deleted afterwards; the
  idempotency record expires by its TTL).
* fileingest: ``[]`` (a JSON file of no records, so no row is written) under the first dataset prefix; result: a
  batch settled after the upload with no error naming the file. The worker logs no per-file success, so on a busy
  pipeline that batch may be another's: the check proves the path works and this file did not fail.
* batchinf: a two-record corpus and a run over it; result: the run SUCCEEDED with both recordIds in its results.
  The run's corpus, shards, results and manifest are deleted afterwards (its ledger entries expire by TTL).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ops.aws import Clients
from ops.knowledge_base import job_line, recent_jobs, target
from ops.stack import StackOutputs


@dataclass(frozen=True)
class Result:
    ok: bool
    detail: str


@dataclass
class Probe:
    """Base: ``send`` once, ``poll`` until it returns a Result, then ``cleanup``."""

    outputs: StackOutputs
    clients: Clients
    token: str
    timeout: float = 300.0
    sent_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    state: dict[str, Any] = field(default_factory=dict)

    def plan(self) -> str:
        raise NotImplementedError

    def send(self) -> None:
        raise NotImplementedError

    def poll(self) -> Result | None:
        raise NotImplementedError

    def cleanup(self) -> None:
        raise NotImplementedError

    def since_ms(self) -> int:
        return int(self.sent_at.timestamp() * 1000) - 5_000

    def environment(self, pipeline: str, purpose: str) -> dict[str, str]:
        name = self.outputs.name(pipeline, purpose)
        return dict(self.clients("lambda").get_function_configuration(FunctionName=name)
                    .get("Environment", {}).get("Variables", {}))

    def watched(self, pipeline: str, bucket: str, queue: str) -> tuple[str, str]:
        """(prefix, suffix) of the bucket's notification to ``queue`` (the pipeline's S3 filter)."""
        arn = self.outputs.queue_arn(self.outputs.queue_name(pipeline, queue))
        config = self.clients("s3").get_bucket_notification_configuration(Bucket=bucket)
        for entry in config.get("QueueConfigurations", []):
            if entry.get("QueueArn") == arn:
                rules = {r["Name"].lower(): r["Value"] for r in
                         entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])}
                return rules.get("prefix", ""), rules.get("suffix", "")
        raise LookupError(f"bucket {bucket} does not notify {arn}")


class KnowledgeBaseProbe(Probe):
    def _key(self) -> tuple[str, str]:
        bucket = self.outputs.value("kbsync", "bucketName")
        prefix, suffix = self.watched("kbsync", bucket, "changes")
        return bucket, f"{prefix}ops-smoke/{self.token}{suffix or '.txt'}"

    def plan(self) -> str:
        bucket, key = self._key()
        return f"kbsync: put s3://{bucket}/{key}, wait for an ingestion job started after it to complete"

    def send(self) -> None:
        bucket, key = self._key()
        self.state["object"] = (bucket, key)
        self.clients("s3").put_object(Bucket=bucket, Key=key, Body=f"ops smoke test {self.token}\n".encode(),
                                      ContentType="text/plain")
        self.sent_at = datetime.now(UTC)

    def poll(self) -> Result | None:
        where = target(self.outputs, self.clients)
        for job in recent_jobs(self.clients("bedrock-agent"), where):
            if job["startedAt"] < self.sent_at:
                continue
            if job["status"] == "COMPLETE":
                return Result(True, job_line(job))
            if job["status"] in ("FAILED", "STOPPED"):
                return Result(False, job_line(job))
        return None

    def cleanup(self) -> None:
        if "object" in self.state:
            bucket, key = self.state["object"]
            self.clients("s3").delete_object(Bucket=bucket, Key=key)


class EventProbe(Probe):
    def _event(self) -> dict[str, Any]:
        env = self.environment("eventproc", "worker")
        return {"Source": json.loads(env["ACCEPTED_SOURCES"])[0],
                "DetailType": json.loads(env["ACCEPTED_DETAIL_TYPES"])[0],
                "EventBusName": self.outputs.value("eventproc", "inputBusName"),
                "Detail": json.dumps({"itemId": f"ops-smoke-{self.token}", "reference": "ops-smoke",
                                      "content": "Smoke test of the pipeline after a deploy. Any answer will do."})}

    def plan(self) -> str:
        event = self._event()
        return f"eventproc: put one {event['Source']} / {event['DetailType']} event on {event['EventBusName']}"

    def send(self) -> None:
        response = self.clients("events").put_events(Entries=[self._event()])
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents refused the event: {response['Entries'][0].get('ErrorMessage')}")
        self.state["eventId"] = response["Entries"][0]["EventId"]
        self.sent_at = datetime.now(UTC)

    def poll(self) -> Result | None:
        function = self.outputs.value("eventproc", "functionName")
        events = self.clients("logs").filter_log_events(
            logGroupName=f"/aws/lambda/{function}", filterPattern=f'"{self.state["eventId"]}"',
            startTime=self.since_ms()).get("events", [])
        for event in events:
            entry = json.loads(event["message"])
            if entry.get("eventId") != self.state["eventId"]:
                continue
            if entry.get("level") == "ERROR":
                return Result(False, f"{entry.get('message')}: {entry.get('reason') or entry.get('error')}")
            if entry.get("resultId") and entry.get("message") == "Result stored and announced":
                self.state["resultId"] = entry["resultId"]
                item = self.clients("dynamodb").get_item(TableName=self.outputs.value("eventproc", "resultsTable"),
                                                         Key={"resultId": {"S": entry["resultId"]}}).get("Item")
                return Result(item is not None, f"result {entry['resultId']}"
                              + ("" if item else " announced but missing from the results table"))
        return None

    def cleanup(self) -> None:
        if "resultId" in self.state:
            self.clients("dynamodb").delete_item(TableName=self.outputs.value("eventproc", "resultsTable"),
                                                 Key={"resultId": {"S": self.state["resultId"]}})


class FileProbe(Probe):
    def _key(self) -> tuple[str, str]:
        bucket = self.outputs.value("fileingest", "bucketName")
        _, suffix = self.watched("fileingest", bucket, "incoming")
        dataset = json.loads(self.environment("fileingest", "worker")["DATASETS"])[0]["prefix"]
        return bucket, f"{dataset}ops-smoke-{self.token}{suffix or '.json'}"

    def plan(self) -> str:
        bucket, key = self._key()
        return f"fileingest: put s3://{bucket}/{key} holding [] (no records), wait for a settled batch"

    def send(self) -> None:
        bucket, key = self._key()
        self.state["object"] = (bucket, key)
        self.clients("s3").put_object(Bucket=bucket, Key=key, Body=b"[]", ContentType="application/json")
        self.sent_at = datetime.now(UTC)

    def poll(self) -> Result | None:
        logs, group = self.clients("logs"), f"/aws/lambda/{self.outputs.value('fileingest', 'functionName')}"
        key_sha = hashlib.sha256(self.state["object"][1].encode()).hexdigest()
        named = logs.filter_log_events(logGroupName=group, filterPattern=f'"{key_sha}"',
                                       startTime=self.since_ms()).get("events", [])
        if named:
            entry = json.loads(named[-1]["message"])
            return Result(False, f"{entry.get('message')}: {entry.get('reason')} {entry.get('detail', '')}".strip())
        for event in logs.filter_log_events(logGroupName=group, filterPattern='"Batch settled"',
                                            startTime=self.since_ms()).get("events", []):
            entry = json.loads(event["message"])
            if entry.get("files", 0) >= 1 and not entry.get("failed"):
                return Result(True, f"a batch of {entry['files']} file(s) settled after the upload, no error for "
                                    "this file")
        return None

    def cleanup(self) -> None:
        if "object" in self.state:
            bucket, key = self.state["object"]
            self.clients("s3").delete_object(Bucket=bucket, Key=key)


class BatchProbe(Probe):
    def _corpus(self) -> tuple[str, bytes]:
        env = self.environment("batchinf", "sharder")
        text, ident = env.get("TEXT_FIELD", "text"), env.get("ID_FIELD", "id")
        lines = [json.dumps({ident: f"ops-smoke-{self.token}-{n}", text: f"Smoke test record {n}. Say hello."})
                 for n in (1, 2)]
        return (f"{self.outputs.value('batchinf', 'corpusPrefix')}ops-smoke/{self.token}.jsonl",
                "".join(f"{line}\n" for line in lines).encode())

    def plan(self) -> str:
        key, _ = self._corpus()
        return f"batchinf: put a two-record corpus {key} and start run ops-smoke-{self.token} over it"

    def send(self) -> None:
        key, body = self._corpus()
        self.state["corpus"] = key
        self.clients("s3").put_object(Bucket=self.outputs.value("batchinf", "inputBucket"), Key=key, Body=body)
        self.state["execution"] = self.clients("stepfunctions").start_execution(
            stateMachineArn=self.outputs.value("batchinf", "stateMachineArn"), name=f"ops-smoke-{self.token}",
            input=json.dumps({"corpusKey": key}))["executionArn"]
        self.sent_at = datetime.now(UTC)

    def poll(self) -> Result | None:
        described = self.clients("stepfunctions").describe_execution(executionArn=self.state["execution"])
        status = described["status"]
        if status == "RUNNING":
            return None
        self.state["ended"] = True
        if status != "SUCCEEDED":
            return Result(False, f"run {status}: {described.get('error', '')} {described.get('cause', '')}"[:400])
        expected = {f"ops-smoke-{self.token}-{n}" for n in (1, 2)}
        found = set()
        s3, bucket = self.clients("s3"), self.outputs.value("batchinf", "outputBucket")
        for key in _keys(s3, bucket, f"results/ops-smoke-{self.token}/"):
            for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines():
                found.add(json.loads(line).get("recordId"))
        missing = expected - found
        return Result(not missing, "both records answered" if not missing else f"no result for {sorted(missing)}")

    def cleanup(self) -> None:
        sfn, s3 = self.clients("stepfunctions"), self.clients("s3")
        if "execution" in self.state and not self.state.get("ended"):
            sfn.stop_execution(executionArn=self.state["execution"], cause="ops smoke: no result in time")
        run = f"ops-smoke-{self.token}"
        inputs, outputs = self.outputs.value("batchinf", "inputBucket"), self.outputs.value("batchinf", "outputBucket")
        doomed = [(inputs, self.state["corpus"])] if "corpus" in self.state else []
        doomed += [(inputs, k) for k in _keys(s3, inputs, f"shards/{run}/")]
        for prefix in ("results", "runs", "bedrock-output"):
            doomed += [(outputs, k) for k in _keys(s3, outputs, f"{prefix}/{run}/")]
        for bucket, key in doomed:
            s3.delete_object(Bucket=bucket, Key=key)


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


PROBES: dict[str, tuple[type[Probe], float]] = {
    "kbsync": (KnowledgeBaseProbe, 1800.0),  # queue delay + batching window + the job itself
    "eventproc": (EventProbe, 300.0),
    "fileingest": (FileProbe, 300.0),  # batching window (55 s) + the load
    "batchinf": (BatchProbe, 900.0),  # two records run synchronously (below minRecordsPerJob)
}
