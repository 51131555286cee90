"""Stream a JSONL corpus into shards that a Bedrock batch job accepts. Pure: lines in, shard writers out.

Bounds. Every shard holds between ``min_records`` and ``max_records`` records and at most ``max_bytes`` bytes.
Shards are cut at ``max_records - min_records + 1`` records (or when the next line would pass ``max_bytes``
minus room for ``min_records`` more lines), so a tail shorter than the minimum always fits into the shard before
it: the tail is merged, never left below the minimum. The config guarantees the room (``max_records >=
2 * min_records`` and ``max_bytes >= 2 * min_records * max_record_bytes``). A corpus smaller than the minimum
gives one short shard, which the caller runs in synchronous mode.

Memory. At most two shards are open at once (the last full one stays open until the next holds the minimum, in
case the tail must join it), their bytes go to the writers (temporary files in the Lambda), and only the first
``min_records`` lines of a shard are held in memory. Memory does not grow with the corpus.

Bad lines. A line that is not UTF-8 JSON, not an object, lacks a non-empty text field, carries an unusable id
or is longer than ``max_record_bytes`` (before or after the prompt is applied) becomes a `Rejected` with its
1-based line number; it never fails the shard. Blank lines are skipped and counted.

>>> sink = MemorySink()
>>> limits = ShardLimits(min_records=2, max_records=4, max_bytes=10_000, max_record_bytes=1_000)
>>> frame = InputFrame.build("amazon.nova-lite-v1:0", "{{content}}", max_tokens=8, temperature=0.0)
>>> lines = [b'{"id": "a", "text": "x"}', b'not json', b'{"text": "y"}', b'{"id": 3, "text": "z"}']
>>> result = shard_corpus(lines, frame, limits, sink, text_field="text", id_field="id")
>>> [s.records for s in result.shards], [(r.line_number, r.reason) for r in result.rejected]
([3], [(2, 'not_json')])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from batch_inference.records import MAX_RECORD_ID_CHARS, InputFrame, record_id_of

REJECT_REASONS = ("too_large", "not_json", "not_an_object", "missing_text", "invalid_id", "invalid_text")


@dataclass(frozen=True)
class ShardLimits:
    min_records: int
    max_records: int
    max_bytes: int
    max_record_bytes: int

    def __post_init__(self) -> None:
        if not 1 <= self.min_records <= self.max_records:
            raise ValueError(f"need 1 <= min_records ({self.min_records}) <= max_records ({self.max_records})")
        if self.max_records < 2 * self.min_records - 1:
            raise ValueError(f"max_records {self.max_records} leaves no room to merge a tail of up to "
                             f"{self.min_records - 1} records: it must be at least 2 x min_records - 1")
        if self.max_bytes < 2 * self.min_records * self.max_record_bytes:
            raise ValueError(f"max_bytes {self.max_bytes} must be at least 2 x min_records x max_record_bytes "
                             f"({2 * self.min_records * self.max_record_bytes}) to merge a tail")

    @property
    def cut_records(self) -> int:
        return self.max_records - self.min_records + 1

    @property
    def cut_bytes(self) -> int:
        return self.max_bytes - (self.min_records - 1) * self.max_record_bytes

    @classmethod
    def unbounded(cls, max_record_bytes: int) -> ShardLimits:
        """One shard for the whole corpus (synchronous mode reads a single file)."""
        return cls(min_records=1, max_records=2**62, max_bytes=2**62, max_record_bytes=max_record_bytes)


@dataclass(frozen=True)
class Rejected:
    line_number: int
    reason: str
    detail: str


@dataclass(frozen=True)
class Shard:
    index: int
    records: int
    bytes: int
    first_line: int
    last_line: int
    location: str  # whatever the sink says identifies the written shard (an S3 key, a path)


class ShardWriter(Protocol):
    def write(self, data: bytes) -> None: ...

    def close(self) -> str: ...  # commit; returns the location


class ShardSink(Protocol):
    def open(self, index: int) -> ShardWriter: ...


@dataclass
class ShardingResult:
    shards: list[Shard] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    valid: int = 0
    blank: int = 0
    lines: int = 0


class _Open:
    """A shard being filled: its first `min_records` lines in memory, the rest streamed to its writer."""

    __slots__ = ("buffer", "bytes", "first_line", "index", "last_line", "records", "writer")

    def __init__(self, index: int) -> None:
        self.index = index
        self.records = 0
        self.bytes = 0
        self.first_line = 0
        self.last_line = 0
        self.buffer: list[bytes] | None = []
        self.writer: ShardWriter | None = None

    def add(self, data: bytes, line_number: int) -> None:
        if not self.records:
            self.first_line = line_number
        self.records += 1
        self.bytes += len(data)
        self.last_line = line_number
        if self.writer is not None:
            self.writer.write(data)
        else:
            assert self.buffer is not None
            self.buffer.append(data)

    def spill(self, sink: ShardSink) -> None:
        """Open the writer and hand it the buffered lines."""
        self.writer = sink.open(self.index)
        assert self.buffer is not None
        for data in self.buffer:
            self.writer.write(data)
        self.buffer = None

    def absorb(self, other: _Open) -> None:
        """Take the (still buffered) lines of a short tail."""
        assert other.buffer is not None and self.writer is not None
        for data in other.buffer:
            self.writer.write(data)
        self.records += other.records
        self.bytes += other.bytes
        self.last_line = other.last_line

    def close(self) -> Shard:
        assert self.writer is not None
        location = self.writer.close()
        return Shard(self.index, self.records, self.bytes, self.first_line, self.last_line, location)


def shard_corpus(lines: Iterable[bytes], frame: InputFrame, limits: ShardLimits, sink: ShardSink, *,
                 text_field: str, id_field: str, max_text_chars: int | None = None,
                 on_reject: Callable[[Rejected], None] | None = None) -> ShardingResult:
    """Shard `lines` (raw lines of the corpus, with or without their newline) into `sink`.

    A text longer than `max_text_chars` characters is rejected as too large (never truncated).
    """
    result = ShardingResult()
    keep_rejected = on_reject is None
    max_record_bytes = limits.max_record_bytes
    cut_records, cut_bytes, min_records = limits.cut_records, limits.cut_bytes, limits.min_records
    previous: _Open | None = None  # full, kept open until `current` reaches the minimum
    current = _Open(0)
    loads, dumps = orjson.loads, orjson.dumps
    head, tail, end = b'{"recordId":', frame.head, frame.tail  # what `InputFrame.line` joins
    max_chars = max_text_chars if max_text_chars is not None else max_record_bytes
    line_number = 0
    for raw in lines:
        line_number += 1
        # The common line (a JSON object with a string id and text, no surrounding whitespace) inline; anything
        # else, and every check that fails, through `_shard_line`, which decides and explains.
        data = rejection = None
        if len(raw) <= max_record_bytes:
            try:
                obj = loads(raw)
            except ValueError:
                obj = None
            if type(obj) is dict:
                text, record_id = obj.get(text_field), obj.get(id_field)
                if (type(text) is str and text and len(text) <= max_chars and not text.isspace()
                        and type(record_id) is str
                        and 0 < len(record_id) <= MAX_RECORD_ID_CHARS and not record_id[0].isspace()
                        and not record_id[-1].isspace()):
                    try:
                        data = head + dumps(record_id) + tail + dumps(text)[1:-1] + end
                    except TypeError:  # not UTF-8: `_shard_line` rejects it
                        data = None
                    if data is not None and len(data) > max_record_bytes:
                        data = None
        if data is None:
            data, rejection = _shard_line(raw, frame, loads, text_field, id_field, max_record_bytes, max_chars)
        if data is None:
            if rejection is None:
                result.blank += 1
                continue
            rejected = Rejected(line_number, *rejection)
            if keep_rejected:
                result.rejected.append(rejected)
            else:
                assert on_reject is not None
                on_reject(rejected)
            continue
        if current.records >= cut_records or (current.records and current.bytes + len(data) > cut_bytes):
            if previous is not None:  # `current` holds at least the minimum, so `previous` is final
                result.shards.append(previous.close())
            previous, current = current, _Open(current.index + 1)
        if current.writer is not None:  # `_Open.add`, inline for the common case
            current.records += 1
            current.bytes += len(data)
            current.last_line = line_number
            current.writer.write(data)
        else:
            current.add(data, line_number)
        result.valid += 1
        if current.records == min_records:
            current.spill(sink)
            if previous is not None:
                result.shards.append(previous.close())
                previous = None
    result.lines = line_number
    if current.records:
        if current.writer is None and previous is not None:
            previous.absorb(current)  # the short tail joins the full shard before it
        else:
            if current.writer is None:
                current.spill(sink)  # the whole corpus is below the minimum: one short shard
            if previous is not None:
                result.shards.append(previous.close())
                previous = None
            result.shards.append(current.close())
    if previous is not None:
        result.shards.append(previous.close())
    return result


def _shard_line(raw: bytes, frame: InputFrame, loads: Callable[..., object], text_field: str, id_field: str,
                max_record_bytes: int, max_chars: int) -> tuple[bytes | None, tuple[str, str] | None]:
    """(shard line, None) for a valid line, (None, (reason, detail)) for a bad one, (None, None) for a blank."""
    if len(raw) > max_record_bytes + 2:
        return None, ("too_large", f"{len(raw)} bytes, limit {max_record_bytes}")
    line = raw.rstrip(b"\r\n")
    if len(line) > max_record_bytes:
        return None, ("too_large", f"{len(line)} bytes, limit {max_record_bytes}")
    if not line.strip():
        return None, None
    try:
        obj = loads(line)
    except ValueError as error:  # orjson's JSONDecodeError (also for invalid UTF-8 and lone surrogates)
        return None, ("not_json", str(error)[:200])
    if not isinstance(obj, dict):
        return None, ("not_an_object", f"a JSON {type(obj).__name__}")
    text = obj.get(text_field)
    if not isinstance(text, str) or not text.strip():
        return None, ("missing_text", f"field {text_field!r} is {_kind(text)}")
    if len(text) > max_chars:
        return None, ("too_large", f"the text has {len(text)} characters, limit {max_chars}")
    record_id = record_id_of(obj.get(id_field), line)
    if record_id is None:
        return None, ("invalid_id", f"field {id_field!r} is {_kind(obj.get(id_field))}")
    try:
        data = frame.line(record_id, text)
    except (UnicodeEncodeError, TypeError):  # orjson's JSONEncodeError is a TypeError
        return None, ("invalid_text", "the text is not valid UTF-8")
    if len(data) > max_record_bytes:
        return None, ("too_large", f"{len(data)} bytes with the prompt applied, limit {max_record_bytes}")
    return data, None


def _kind(value: object) -> str:
    if value is None:
        return "missing"
    if isinstance(value, str):
        return "empty" if not value.strip() else "too long"
    return f"a {type(value).__name__}"


class MemorySink:
    """Shards kept in memory (tests, small corpora)."""

    def __init__(self) -> None:
        self.shards: dict[int, bytes] = {}

    def open(self, index: int) -> ShardWriter:
        return _MemoryWriter(self, index)


class _MemoryWriter:
    def __init__(self, sink: MemorySink, index: int) -> None:
        self.sink, self.index, self.parts = sink, index, list[bytes]()

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def close(self) -> str:
        self.sink.shards[self.index] = b"".join(self.parts)
        return f"memory:{self.index}"


def iter_lines(chunks: Iterable[bytes], max_line_bytes: int) -> Iterator[bytes]:
    """Lines of a byte stream given in arbitrary chunks (an S3 body), each without its newline.

    A line longer than `max_line_bytes` is not accumulated: it is yielded cut to `max_line_bytes + 3` bytes (so the
    sharder rejects it as too large) and the rest of it is skipped, so one huge line cannot exhaust memory.
    """
    rest = b""
    skipping = False
    for chunk in chunks:
        if not chunk:
            continue
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        for part in parts:
            if skipping:
                skipping = False
                continue
            yield part
        if len(rest) > max_line_bytes + 2:
            if not skipping:
                yield rest[: max_line_bytes + 3]
            skipping, rest = True, b""
    if rest and not skipping:
        yield rest
