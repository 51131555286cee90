"""Monthly volumes a cost estimate assumes: three built-in profiles, or a YAML/JSON file over one of them.

A file holds any subset of the keys below (camelCase, as in `python -m offline cost --volume FILE`); the keys it
leaves out keep the profile's value. Unknown keys and values of the wrong type or range are refused, naming the key.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

ProfileName = Literal["small", "medium", "large"]


class VolumeError(Exception):
    """A volume file that cannot be read or does not validate; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Shared(_Section):
    storage_months: float = Field(gt=0, description="Months of data tables and buckets hold (items with a TTL: at "
                                                    "most their TTL); the estimate is that month's bill.")
    cold_start_share: float = Field(ge=0, le=1, description="Share of invocations that start a new execution "
                                                            "environment (and read a secret again).")
    poller_count: int = Field(ge=0, description="Long-polling requests each SQS event source keeps open, all month.")


class EventProcessing(_Section):
    events_per_month: float = Field(ge=0)
    input_tokens_per_event: float = Field(ge=0)
    output_tokens_per_event: float = Field(ge=0)
    event_kb: float = Field(gt=0, description="Size of an input event (SQS and EventBridge bill 64 KB chunks).")
    result_item_kb: float = Field(gt=0, description="Size of a result (and idempotency) item in DynamoDB.")
    invocation_seconds: float = Field(gt=0, description="Duration of one worker invocation (one batch).")
    batch_fill: float = Field(gt=0, le=1, description="Average share of the event source's batch size filled.")
    log_kb_per_invocation: float = Field(ge=0)


class FileIngestion(_Section):
    files_per_month: float = Field(ge=0, description="Files matching the input rules.")
    file_kb: float = Field(gt=0)
    seconds_per_file: float = Field(ge=0)
    invocation_overhead_seconds: float = Field(ge=0)
    batch_fill: float = Field(gt=0, le=1)
    log_kb_per_invocation: float = Field(ge=0)


class KnowledgeBaseSync(_Section):
    document_changes_per_month: float = Field(ge=0)
    change_bursts_per_month: float = Field(ge=0, description="Upload bursts: each ends in at least one batch.")
    documents_stored: float = Field(ge=0)
    document_kb: float = Field(gt=0)
    invocation_seconds: float = Field(gt=0)
    log_kb_per_invocation: float = Field(ge=0)


class BatchInference(_Section):
    runs_per_month: float = Field(ge=0)
    records_per_run: int = Field(ge=0)
    input_tokens_per_record: float = Field(ge=0)
    output_tokens_per_record: float = Field(ge=0)
    record_kb: float = Field(gt=0, description="Size of a corpus line.")
    ledger_item_kb: float = Field(gt=0)
    converse_seconds: float = Field(gt=0, description="Duration of one synchronous model call.")
    sharder_records_per_second: float = Field(gt=0)
    join_records_per_second: float = Field(gt=0, description="Records the completion handler joins per second.")
    task_seconds: float = Field(gt=0, description="Duration of a submitter, finalizer or reconciler invocation.")
    failed_record_share: float = Field(ge=0, le=1)
    log_kb_per_invocation: float = Field(ge=0)


class Volumes(_Section):
    shared: Shared
    event_processing: EventProcessing
    file_ingestion: FileIngestion
    knowledge_base_sync: KnowledgeBaseSync
    batch_inference: BatchInference


_SHARED = {"storageMonths": 1, "coldStartShare": 0.02, "pollerCount": 5}
# Event processing: the reference architecture's S/M/L events and tokens per event, split 60/40 input/output as it
# does. A worker invocation is one batch processed concurrently, about 1.2 x one model call (`benchmarks.
# event_processing`) of ~1.5 s. File ingestion: 10k, 100k (the reference's figure) and 1M files a day; 5 ms per
# file (`benchmarks.file_ingestion` measures 4.2-6.8 ms). Batch inference: sharding at 500k records/s (measured
# 675k-737k) and joins at 60k records/s (measured 63k-111k).
PROFILES: dict[str, dict[str, Any]] = {
    "small": {
        "shared": _SHARED,
        "eventProcessing": {"eventsPerMonth": 50_000, "inputTokensPerEvent": 480, "outputTokensPerEvent": 320,
                            "eventKb": 2, "resultItemKb": 1, "invocationSeconds": 1.8, "batchFill": 0.5,
                            "logKbPerInvocation": 4},
        "fileIngestion": {"filesPerMonth": 300_000, "fileKb": 20, "secondsPerFile": 0.005,
                          "invocationOverheadSeconds": 0.3, "batchFill": 0.5, "logKbPerInvocation": 3},
        "knowledgeBaseSync": {"documentChangesPerMonth": 1_000, "changeBurstsPerMonth": 60, "documentsStored": 5_000,
                              "documentKb": 200, "invocationSeconds": 1, "logKbPerInvocation": 2},
        "batchInference": {"runsPerMonth": 4, "recordsPerRun": 10_000, "inputTokensPerRecord": 800,
                           "outputTokensPerRecord": 150, "recordKb": 3, "ledgerItemKb": 1, "converseSeconds": 2,
                           "sharderRecordsPerSecond": 500_000, "joinRecordsPerSecond": 60_000, "taskSeconds": 1,
                           "failedRecordShare": 0.01, "logKbPerInvocation": 2},
    },
    "medium": {
        "shared": _SHARED,
        "eventProcessing": {"eventsPerMonth": 1_000_000, "inputTokensPerEvent": 720, "outputTokensPerEvent": 480,
                            "eventKb": 2, "resultItemKb": 1, "invocationSeconds": 1.8, "batchFill": 0.9,
                            "logKbPerInvocation": 4},
        "fileIngestion": {"filesPerMonth": 3_000_000, "fileKb": 20, "secondsPerFile": 0.005,
                          "invocationOverheadSeconds": 0.3, "batchFill": 1, "logKbPerInvocation": 3},
        "knowledgeBaseSync": {"documentChangesPerMonth": 10_000, "changeBurstsPerMonth": 300,
                              "documentsStored": 50_000, "documentKb": 200, "invocationSeconds": 1,
                              "logKbPerInvocation": 2},
        "batchInference": {"runsPerMonth": 8, "recordsPerRun": 250_000, "inputTokensPerRecord": 800,
                           "outputTokensPerRecord": 150, "recordKb": 3, "ledgerItemKb": 1, "converseSeconds": 2,
                           "sharderRecordsPerSecond": 500_000, "joinRecordsPerSecond": 60_000, "taskSeconds": 1,
                           "failedRecordShare": 0.01, "logKbPerInvocation": 2},
    },
    "large": {
        "shared": _SHARED,
        "eventProcessing": {"eventsPerMonth": 25_000_000, "inputTokensPerEvent": 900, "outputTokensPerEvent": 600,
                            "eventKb": 2, "resultItemKb": 1, "invocationSeconds": 1.8, "batchFill": 1,
                            "logKbPerInvocation": 4},
        "fileIngestion": {"filesPerMonth": 30_000_000, "fileKb": 20, "secondsPerFile": 0.005,
                          "invocationOverheadSeconds": 0.3, "batchFill": 1, "logKbPerInvocation": 3},
        "knowledgeBaseSync": {"documentChangesPerMonth": 100_000, "changeBurstsPerMonth": 1_500,
                              "documentsStored": 500_000, "documentKb": 200, "invocationSeconds": 1,
                              "logKbPerInvocation": 2},
        "batchInference": {"runsPerMonth": 30, "recordsPerRun": 1_000_000, "inputTokensPerRecord": 800,
                           "outputTokensPerRecord": 150, "recordKb": 3, "ledgerItemKb": 1, "converseSeconds": 2,
                           "sharderRecordsPerSecond": 500_000, "joinRecordsPerSecond": 60_000, "taskSeconds": 1,
                           "failedRecordShare": 0.01, "logKbPerInvocation": 2},
    },
}


def profile(name: str) -> Volumes:
    if name not in PROFILES:
        raise VolumeError(f"unknown profile {name!r}; profiles: {', '.join(PROFILES)}")
    return Volumes.model_validate(PROFILES[name])


def load_volumes(path: Path, base: str = "medium") -> Volumes:
    """The volumes of `path` (YAML or JSON) over the `base` profile's."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise VolumeError(f"{path}: {error.strerror}") from error
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise VolumeError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {error}") from error
    return parse_volumes(document or {}, base=base, source=str(path))


def parse_volumes(document: Any, *, base: str = "medium", source: str = "volumes") -> Volumes:
    if not isinstance(document, dict):
        raise VolumeError(f"{source}: expected a mapping of sections ({', '.join(PROFILES[base])}), "
                          f"got {type(document).__name__}")
    merged = copy.deepcopy(PROFILES[base])
    for section, values in document.items():
        if section not in merged:
            raise VolumeError(f"{source}: {section}: unknown section; sections: {', '.join(merged)}")
        if not isinstance(values, dict):
            raise VolumeError(f"{source}: {section}: expected a mapping, got {type(values).__name__}")
        merged[section] = {**merged[section], **values}
    try:
        return Volumes.model_validate(merged)
    except ValidationError as error:
        raise VolumeError(_describe(error, source)) from None


def _keys(section: str) -> list[str]:
    field = next((f for name, f in Volumes.model_fields.items() if (f.alias or to_camel(name)) == section), None)
    model = field.annotation if field is not None else None
    if not isinstance(model, type) or not issubclass(model, BaseModel):
        return []
    return [f.alias or to_camel(name) for name, f in model.model_fields.items()]


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: {error.error_count()} invalid volume(s):"]
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"])
        if problem["type"] == "extra_forbidden":
            lines.append(f"  - {key}: unknown key; keys: {', '.join(_keys(str(problem['loc'][0])))}")
        else:
            lines.append(f"  - {key} = {json.dumps(problem.get('input'), default=str)}: {problem['msg']}")
    return "\n".join(lines)
