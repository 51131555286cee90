"""Join a Bedrock batch job's output with the shard it ran on. Pure.

Bedrock writes one output line per input record, in no guaranteed order: ``{"recordId", "modelInput",
"modelOutput"}`` on success, ``{"recordId", "modelInput", "error": {"errorCode", "errorMessage"}}`` on failure,
plus ``manifest.json.out`` with the job's counts. Everything here is keyed by recordId, never by position:

* a shard record with a ``modelOutput`` line succeeded; with an ``error`` line it failed (that error);
* a shard record without any output line failed as ``missing_output`` (a partially completed job);
* an output line whose recordId is not in the shard is counted as ``unexpected`` and ignored;
* a recordId twice in the output keeps its first success (a repeated record id is processed once; the shard's
  later occurrences of it are duplicates, which the caller settles as such);
* the manifest's counts are compared with the shard and the lines read, and each disagreement is reported.

>>> shard = [b'{"recordId":"a","modelInput":{}}', b'{"recordId":"b","modelInput":{}}']
>>> out = [b'{"recordId":"b","modelInput":{},"error":{"errorCode":400,"errorMessage":"bad"}}',
...        b'{"recordId":"a","modelInput":{},"modelOutput":{"content":[{"type":"text","text":"hi"}]}}']
>>> joined = join_output(shard_record_ids(shard), out, {"totalRecordCount": 2, "successRecordCount": 1,
...                                                    "errorRecordCount": 1})
>>> sorted(joined.succeeded), joined.failed["b"].reason, joined.manifest_mismatches
(['a'], 'model_error', [])
"""

from __future__ import annotations

import hashlib
import json.decoder
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from common.heap import collector_paused


@dataclass(frozen=True)
class Failure:
    reason: str  # model_error | missing_output | job_failed | throttled | model_rejected | unit_failed
    detail: str


@dataclass
class JoinResult:
    order: list[str]  # the shard's record ids, in shard order, each once
    succeeded: dict[str, Any] = field(default_factory=dict)  # recordId -> modelOutput
    failed: dict[str, Failure] = field(default_factory=dict)
    unexpected: int = 0
    unreadable: int = 0
    manifest_mismatches: list[str] = field(default_factory=list)


# The sharder writes every line as {"recordId":"<id>",...}: the id is read from the line's head, not the whole line
# (whose prompt can be long); any other line is parsed in full.
_SHARD_HEAD = b'{"recordId":"'
_ID_WINDOW = 6 * 256 + 16  # the longest recordId, every character escaped, and its closing quote


def jsonl_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of a JSON Lines stream given in arbitrary chunks (an S3 body's ``iter_chunks``), without their ends.

    A line ends at ``\\n`` alone (a ``\\r`` before it is dropped), as JSON Lines says. botocore's ``iter_lines``
    splits with ``bytes.splitlines``, which also ends a line at a lone ``\\r`` (JSON allows one between tokens),
    and ``str.splitlines`` at U+2028, U+0085 and other characters a JSON string may hold raw. Linear in the bytes:
    a line spanning chunks is joined once.
    """
    pending: list[bytes] = []
    for chunk in chunks:
        *ended, rest = chunk.split(b"\n")
        if ended:
            ended[0] = b"".join([*pending, ended[0]])
            yield from (line.removesuffix(b"\r") for line in ended)
            pending = []
        pending.append(rest)
    last = b"".join(pending)
    if last:
        yield last.removesuffix(b"\r")


def batch_key(record_ids: list[str]) -> str:
    """A mode B batch's key: its distinct record ids, in order, hashed (the same batch always has the same key)."""
    return hashlib.sha256("\n".join(record_ids).encode()).hexdigest()[:20]


def shard_record_ids(lines: Iterable[bytes]) -> list[str]:
    """The record id of each line of a shard file, in order (blank lines ignored; a repeated id is repeated)."""
    order: list[str] = []
    loads, scan, head = orjson.loads, json.decoder.scanstring, len(_SHARD_HEAD)  # type: ignore[attr-defined]
    for line in lines:
        if not line.strip():
            continue
        record_id = None
        if line.startswith(_SHARD_HEAD):
            window = line[head - 1:head + _ID_WINDOW].decode("utf-8", "ignore")
            try:
                record_id, _ = scan(window, 1)
            except ValueError:
                record_id = None
        if record_id is None:
            record_id = str(loads(line)["recordId"])
        order.append(record_id)
    return order


def join_output(record_ids: list[str], output_lines: Iterable[bytes],
                manifest: Mapping[str, Any] | None) -> JoinResult:
    """Join the output lines of one job with the ids of the shard it ran on (one per shard line)."""
    with collector_paused():  # parsed JSON holds no cycles; the join keeps tens of thousands of objects
        return _join(record_ids, output_lines, manifest)


def _join(record_ids: list[str], output_lines: Iterable[bytes], manifest: Mapping[str, Any] | None) -> JoinResult:
    result = JoinResult(order=list(dict.fromkeys(record_ids)))
    expected = set(result.order)
    succeeded, errors = result.succeeded, dict[str, Failure]()
    success_lines = error_lines = 0
    loads = orjson.loads
    for line in output_lines:
        if not line.strip():
            continue
        try:
            obj = loads(line)
            record_id = str(obj["recordId"])
        except (ValueError, KeyError, TypeError):
            result.unreadable += 1
            continue
        if record_id not in expected:
            result.unexpected += 1
            continue
        if "modelOutput" in obj and "error" not in obj:
            success_lines += 1
            succeeded.setdefault(record_id, obj["modelOutput"])
        else:
            error_lines += 1
            errors.setdefault(record_id, Failure("model_error", _error_detail(obj.get("error"))))
    for record_id in result.order:
        if record_id in succeeded:
            continue
        result.failed[record_id] = errors.get(record_id) or Failure(
            "missing_output", "the job wrote no output line for this record")
    if manifest is not None:
        result.manifest_mismatches = _check_manifest(manifest, len(record_ids), success_lines, error_lines)
    return result


def _error_detail(error: Any) -> str:
    if isinstance(error, Mapping):
        return f"{error.get('errorCode', '?')}: {error.get('errorMessage', '')}"[:500]
    return str(error)[:500]


def _check_manifest(manifest: Mapping[str, Any], shard_records: int, success_lines: int,
                    error_lines: int) -> list[str]:
    checks = (("totalRecordCount", shard_records, "records in the shard"),
              ("successRecordCount", success_lines, "success lines in the output"),
              ("errorRecordCount", error_lines, "error lines in the output"))
    return [f"manifest {key} {manifest[key]} != {actual} {what}" for key, actual, what in checks
            if key in manifest and int(manifest[key]) != actual]


def result_line(record_id: str, model_output: Any, text: str | None) -> bytes:
    """One line of a results file: ``{"recordId", "output": <the generated text>, "modelOutput": <the body>}``."""
    return orjson.dumps({"recordId": record_id, "output": text, "modelOutput": model_output},
                        option=orjson.OPT_APPEND_NEWLINE)
