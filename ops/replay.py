"""``replay-failures``: a batch-inference run's failure-lane records -> a new corpus (and optionally a new run).

The run's records are taken from the failure lane (held invisible while the command works; other runs' records
are held too and released at the end, each receive adding one to their receive count). The run's corpus is the
``corpusKey`` of its execution input. Each record is found in it again:

* replayable (the model, its job or its unit failed: throttled, model_rejected, model_error, job_failed,
  missing_output, unit_failed): its corpus line, unchanged, goes into the new corpus
  ``<corpusPrefix>replays/<run>-<time>.jsonl`` in the input bucket (or ``--local FILE``);
* to fix first (a bad corpus line, the later occurrences of a repeated id, a record not found in the corpus):
  written with its reason and line to ``--fix-file`` (``<run>-to-fix.jsonl``) for a person.

Once everything is written the taken records are deleted from the lane (``--keep`` leaves them). ``--start-run``
then starts a new run over the new corpus: a new run is new work, so its ledger processes every record again.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops.aws import Clients
from ops.confirm import confirmed
from ops.corpus import CHUNK_BYTES, numbered_lines, record_id
from ops.stack import StackOutputs

HOLD_SECONDS = 900
FIX_FIRST = frozenset({"duplicate_record_id"})
EMPTY_RECEIVES = 2


@dataclass(frozen=True)
class Options:
    run_id: str
    local: str | None = None
    fix_file: str | None = None
    start_run: str | None = None  # "" = default name
    keep: bool = False
    limit: int = 10_000
    text_field: str | None = None
    id_field: str | None = None


@dataclass
class Taken:
    mine: list[dict[str, Any]] = field(default_factory=list)  # (message, body) of the run
    others: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Recovered:
    lines: list[bytes] = field(default_factory=list)
    to_fix: list[dict[str, Any]] = field(default_factory=list)


def run(outputs: StackOutputs, clients: Clients, options: Options, *, dry_run: bool, yes: bool) -> int:
    if options.local and options.start_run is not None:
        print("--start-run needs the corpus in S3: drop --local")
        return 2
    sqs, lane = clients("sqs"), outputs.value("batchinf", "failureLaneUrl")
    taken = take(sqs, lane, options.run_id, options.limit)
    try:
        return _replay(outputs, clients, options, taken, dry_run=dry_run, yes=yes)
    finally:
        release(sqs, lane, taken.others + taken.mine)  # the deleted ones are skipped


def _replay(outputs: StackOutputs, clients: Clients, options: Options, taken: Taken, *, dry_run: bool,
            yes: bool) -> int:
    bodies = _unique(taken.mine)
    print(f"failure lane: {len(taken.mine)} message(s) of run {options.run_id} ({len(bodies)} distinct records), "
          f"{len(taken.others)} of other runs left alone")
    for (stage, reason), count in sorted(Counter((b.get("stage"), b.get("reason")) for b in bodies).items()):
        print(f"  {stage}/{reason}: {count}")
    if not bodies:
        return 0
    bucket, corpus_key = corpus_of(outputs, clients, options.run_id)
    text_field, id_field = fields(outputs, clients, options)
    recovered = recover(clients("s3"), bucket, corpus_key, bodies, id_field)
    print(f"corpus s3://{bucket}/{corpus_key}: {len(recovered.lines)} record(s) to replay, "
          f"{len(recovered.to_fix)} to fix first (text field {text_field!r}, id field {id_field!r})")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    new_key = f"{outputs.value('batchinf', 'corpusPrefix')}replays/{options.run_id}-{stamp}.jsonl"
    fix_file = options.fix_file or f"{options.run_id}-to-fix.jsonl"
    target = options.local or f"s3://{bucket}/{new_key}"
    plan = (f"write {len(recovered.lines)} line(s) to {target}"
            + (f", {len(recovered.to_fix)} record(s) to fix to {fix_file}" if recovered.to_fix else "")
            + ("" if options.keep else f", then delete the run's {len(taken.mine)} failure-lane message(s)"))
    if dry_run:
        print(f"dry run: would {plan}")
        return 0
    if not confirmed(plan[0].upper() + plan[1:], yes=yes):
        print("cancelled")
        return 1
    if recovered.lines:
        data = b"".join(line + b"\n" for line in recovered.lines)
        if options.local:
            Path(options.local).write_bytes(data)
        else:
            clients("s3").put_object(Bucket=bucket, Key=new_key, Body=data, ContentType="application/x-ndjson")
        print(f"wrote {target}")
    if recovered.to_fix:
        Path(fix_file).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recovered.to_fix),
                                  encoding="utf-8")
        print(f"wrote {fix_file}: fix these lines, then put them in a corpus of their own")
    if not options.keep:
        delete(clients("sqs"), outputs.value("batchinf", "failureLaneUrl"), taken.mine)
        for message in taken.mine:
            message["_deleted"] = True
    if options.start_run is not None and recovered.lines:
        name = options.start_run or f"{options.run_id[:55]}-replay-{stamp}"
        arn = clients("stepfunctions").start_execution(
            stateMachineArn=outputs.value("batchinf", "stateMachineArn"), name=name,
            input=json.dumps({"corpusKey": new_key}))["executionArn"]
        print(f"started run {name}: {arn}")
    return 0


def take(sqs: Any, url: str, run_id: str, limit: int) -> Taken:
    """Receive until the lane answers empty twice (or ``limit``), holding everything received."""
    taken, empty = Taken(), 0
    while empty < EMPTY_RECEIVES and len(taken.mine) + len(taken.others) < limit:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=HOLD_SECONDS,
                                       WaitTimeSeconds=1, MessageAttributeNames=["All"]).get("Messages", [])
        empty = 0 if messages else empty + 1
        for message in messages:
            try:
                body = json.loads(message["Body"])
            except json.JSONDecodeError:
                body = None
            if isinstance(body, dict) and body.get("runId") == run_id:
                taken.mine.append({**message, "_body": body})
            else:
                taken.others.append(message)
    return taken


def _unique(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One body per dedupeKey (a crash between a send and its ledger mark sends a record twice)."""
    seen: dict[str, dict[str, Any]] = {}
    for message in messages:
        key = message.get("MessageAttributes", {}).get("dedupeKey", {}).get("StringValue") or message["MessageId"]
        seen.setdefault(key, message["_body"])
    return list(seen.values())


def corpus_of(outputs: StackOutputs, clients: Clients, run_id: str) -> tuple[str, str]:
    machine = outputs.value("batchinf", "stateMachineArn")
    execution = machine.replace(":stateMachine:", ":execution:", 1) + f":{run_id}"
    described = clients("stepfunctions").describe_execution(executionArn=execution)
    return outputs.value("batchinf", "inputBucket"), str(json.loads(described["input"])["corpusKey"])


def fields(outputs: StackOutputs, clients: Clients, options: Options) -> tuple[str, str]:
    if options.text_field and options.id_field:
        return options.text_field, options.id_field
    variables: dict[str, str] = {}
    try:
        variables = clients("lambda").get_function_configuration(FunctionName=outputs.name("batchinf", "sharder"))[
            "Environment"]["Variables"]
    except Exception as error:  # the defaults are the config's; say which were assumed
        print(f"note: could not read the sharder's TEXT_FIELD/ID_FIELD ({type(error).__name__}); using defaults")
    return (options.text_field or variables.get("TEXT_FIELD", "text"),
            options.id_field or variables.get("ID_FIELD", "id"))


def recover(s3: Any, bucket: str, key: str, bodies: list[dict[str, Any]], id_field: str) -> Recovered:
    by_line = {b["lineNumber"]: b for b in bodies if b.get("stage") == "shard" and b.get("lineNumber")}
    replay = {b["recordId"]: b for b in bodies
              if b.get("stage") != "shard" and b.get("reason") not in FIX_FIRST and b.get("recordId")}
    repeated = {b["recordId"]: b for b in bodies if b.get("reason") in FIX_FIRST and b.get("recordId")}
    result, found, occurrences = Recovered(), set[str](), Counter[str]()
    stream = s3.get_object(Bucket=bucket, Key=key)["Body"]
    for number, line in numbered_lines(stream.iter_chunks(CHUNK_BYTES)):
        if number in by_line:
            result.to_fix.append(_fix(by_line.pop(number), line))
            continue
        if not replay.keys() - found and not repeated:
            continue
        rid = record_id(line, id_field)
        if rid is None:
            continue
        occurrences[rid] += 1
        if rid in replay and rid not in found:
            found.add(rid)
            result.lines.append(line)
        elif rid in repeated and occurrences[rid] > 1:
            result.to_fix.append(_fix(repeated[rid], line, number))
    result.to_fix += [_fix(b, None) for b in by_line.values()]
    result.to_fix += [_fix(b, None, note="not found in the corpus") for r, b in replay.items() if r not in found]
    return result


def _fix(body: dict[str, Any], line: bytes | None, number: int | None = None, note: str | None = None
         ) -> dict[str, Any]:
    return {"runId": body.get("runId"), "stage": body.get("stage"), "reason": body.get("reason"),
            "detail": note or body.get("detail"), "recordId": body.get("recordId"),
            "lineNumber": number or body.get("lineNumber"),
            "line": None if line is None else line.decode("utf-8", "backslashreplace")}


def delete(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        batch = messages[start:start + 10]
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                         for i, m in enumerate(batch)])


def release(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    """Make held messages visible again at once (deleted ones are skipped)."""
    live = [m for m in messages if not m.get("_deleted")]
    for start in range(0, len(live), 10):
        batch = live[start:start + 10]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(batch)])
