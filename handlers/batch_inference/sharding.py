"""Stream a JSONL corpus into shards that a Bedrock batch job accepts. Pure: lines in, shard writers out.

Bounds. Every shard holds between ``min_records`` and ``max_records`` records and at most ``max_bytes`` bytes.
Shards are cut at ``max_records - min_records + 1`` records (or when the next line would pass ``max_bytes``
minus room for ``min_records`` more lines), so a tail shorter than the minimum always fits into the shard before
it: the tail is merged, never left below the minimum. The config guarantees the room (``max_records >=
2 * min_records`` and ``max_bytes >= 2 * min_records * max_record_bytes``). A corpus smaller than the minimum
gives one short shard, which the caller runs in synchronous mode.

Memory. At most two shards are open at once (the last full one stays open until the next holds the minimum, in
case the tail must join it), their bytes go to the writers (temporary files in the Lambda), and only the first
``min_records`` records of a shard (plus at most one block of lines) are held in memory. Memory does not grow
with the corpus.

Bad lines. A line that is not UTF-8 JSON, not an object, lacks a non-empty text field, carries an unusable id
or is longer than ``max_record_bytes`` (before or after the prompt is applied) becomes a `Rejected` with its
1-based line number; it never fails the shard. Blank lines are skipped and counted.

Blocks. Lines are handled in blocks of up to `BLOCK_LINES`: a block is decoded line by line inside one C-level
``map`` (msgspec, into the text and the id alone), checked with whole-block passes (UTF-8, types, lengths,
whitespace) and written as one joined byte string, one write per shard it touches. A block holding any line the
passes do not accept is halved until the halves pass, and the few lines left around each unusual one go through
the per-line rules (`_LineRules`, which decide every rejection). The block path accepts exactly the lines the
per-line rules accept, with the same bytes (``per_line=True`` runs the per-line rules alone, as the reference the
tests compare with). JSON here is what msgspec decodes, in UTF-8: numbers out of a double's range in the fields
the sharder does not read are accepted.

>>> sink = MemorySink()
>>> limits = ShardLimits(min_records=2, max_records=4, max_bytes=10_000, max_record_bytes=1_000)
>>> frame = InputFrame.build("amazon.nova-lite-v1:0", "{{content}}", max_tokens=8, temperature=0.0)
>>> lines = [b'{"id": "a", "text": "x"}', b'not json', b'{"text": "y"}', b'{"id": 3, "text": "z"}']
>>> result = shard_corpus(lines, frame, limits, sink, text_field="text", id_field="id")
>>> [s.records for s in result.shards], [(r.line_number, r.reason) for r in result.rejected]
([3], [(2, 'not_json')])
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate, chain, islice, repeat
from operator import attrgetter
from typing import Any, Protocol

import msgspec

from batch_inference.records import MAX_RECORD_ID_CHARS, InputFrame, record_id_of
from common.heap import collector_paused

REJECT_REASONS = ("too_large", "not_json", "not_an_object", "missing_text", "invalid_id", "invalid_text")
# Lines per block: large enough that the per-block passes cost little per line, small enough that a block's
# lines, parsed objects and shard lines stay in the CPU cache.
BLOCK_LINES = 1024
# A failing block is halved down to this many lines; below it the per-line rules take the lines one by one.
_SMALLEST_HALF = 8


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


def shard_corpus(lines: Iterable[bytes], frame: InputFrame, limits: ShardLimits, sink: ShardSink, *,
                 text_field: str, id_field: str, max_text_chars: int | None = None,
                 on_reject: Callable[[Rejected], None] | None = None, per_line: bool = False) -> ShardingResult:
    """Shard `lines` (raw lines of the corpus, with or without their newline) into `sink`.

    A text longer than `max_text_chars` characters is rejected as too large (never truncated). `per_line` sends
    every line through the per-line rules alone: the same result, slower; the reference for the block path.
    """
    remaining = iter(lines)
    blocks = iter(lambda: list(islice(remaining, BLOCK_LINES)), [])
    return shard_blocks(blocks, frame, limits, sink, text_field=text_field, id_field=id_field,
                        max_text_chars=max_text_chars, on_reject=on_reject, per_line=per_line)


def shard_blocks(blocks: Iterable[list[bytes]], frame: InputFrame, limits: ShardLimits, sink: ShardSink, *,
                 text_field: str, id_field: str, max_text_chars: int | None = None,
                 on_reject: Callable[[Rejected], None] | None = None, per_line: bool = False) -> ShardingResult:
    """`shard_corpus` for lines given in lists of any length (`iter_line_blocks` of a byte stream)."""
    rules = _LineRules(frame, text_field, id_field, limits.max_record_bytes,
                       max_text_chars if max_text_chars is not None else limits.max_record_bytes,
                       line_decoder(text_field, id_field))
    shards = _Shards(limits, sink)
    result = shards.result
    report = on_reject if on_reject is not None else result.rejected.append
    first = 1  # line number of the block's first line
    with collector_paused():  # a million short-lived objects per million lines, and no cycles among them
        for block in blocks:
            for start in range(0, len(block), BLOCK_LINES):
                lines = block[start:start + BLOCK_LINES]
                records = _Records.of(lines, first, rules, per_line=per_line)
                shards.add(b"".join(records.parts), records.sizes, records.numbers)
                result.blank += records.blank
                for rejected in records.rejected:
                    report(rejected)
                first += len(lines)
    result.lines = first - 1
    return shards.finish()


def line_decoder(text_field: str, id_field: str) -> msgspec.json.Decoder[Any]:
    """A decoder of one corpus line into its text and id (``.text``, ``.record_id``: any JSON, None if absent).

    Only those two fields become Python objects; the others are checked as JSON (structure, escapes, numbers) and
    skipped, except the UTF-8 of their strings, which `_utf8_problem` checks.
    """
    if text_field == id_field:
        raise ValueError(f"the text field and the id field are both {text_field!r}; they must differ")
    line = msgspec.defstruct("Line", [("text", Any, None), ("record_id", Any, None)],
                             rename={"text": text_field, "record_id": id_field})
    return msgspec.json.Decoder(line)


# Deepest nesting of a line: msgspec decodes recursively and would hit the interpreter's recursion limit (1,000 frames
# on python3.11, counting the caller's) at a depth that depends on the caller's stack, so both paths refuse deeper
# lines by this fixed rule first. A line of at most MAX_DEPTH bytes cannot nest deeper, so short lines skip the check.
MAX_DEPTH = 512
_NESTING = [0] * 256
_NESTING[ord("{")] = _NESTING[ord("[")] = 1
_NESTING[ord("}")] = _NESTING[ord("]")] = -1


def _depth(line: bytes) -> int:
    r"""How deep `line`'s arrays and objects nest (brackets inside strings do not count).

    Linear in the length n of the line, whatever its bytes: five passes of CPython's bytes methods over at most n
    bytes each (two replaces, a split, a join, the running sum), none of which looks back; no regular expression,
    so nothing can backtrack (a string pattern rescanned the rest of the line from every quote of an unterminated
    string: quadratic, minutes for a 100 KB line). Escapes go first (``\\`` pairs, left to right as JSON reads
    them, then ``\"``), so every quote left opens or closes a string: the pieces between quotes alternate outside,
    inside. An unterminated string runs to the end of the line, as a JSON decoder sees it.
    """
    pieces = line.replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')
    outside = b"".join(pieces[::2])
    return max(accumulate(map(_NESTING.__getitem__, outside)), default=0)


def _may_nest_deeper(lines: list[bytes], longest: int) -> bool:
    """Whether a line of `lines` (the longest `longest` bytes) could nest deeper than MAX_DEPTH: it opens more
    brackets than that (two C passes, only when a line is long enough)."""
    return longest > MAX_DEPTH and (max(map(bytes.count, lines, repeat(b"{")))
                                    + max(map(bytes.count, lines, repeat(b"[")))) > MAX_DEPTH


def _utf8_problem(data: bytes) -> str | None:
    try:
        data.decode()
    except UnicodeDecodeError as error:
        return f"byte {error.start} is not valid UTF-8"
    return None


@dataclass(frozen=True)
class _LineRules:
    """What makes a line a record, and the shard line it becomes: the authority on every rejection."""

    frame: InputFrame
    text_field: str
    id_field: str
    max_record_bytes: int
    max_chars: int
    decoder: msgspec.json.Decoder[Any]

    def shard_line(self, raw: bytes) -> tuple[bytes | None, tuple[str, str] | None]:
        """(shard line, None) for a valid line, (None, (reason, detail)) for a bad one, (None, None) for a blank."""
        if len(raw) > self.max_record_bytes + 2:
            return None, ("too_large", f"{len(raw)} bytes, limit {self.max_record_bytes}")
        line = raw.rstrip(b"\r\n")
        if len(line) > self.max_record_bytes:
            return None, ("too_large", f"{len(line)} bytes, limit {self.max_record_bytes}")
        if not line.strip():
            return None, None
        problem = _utf8_problem(line)
        if problem is not None:
            return None, ("not_json", problem)
        if _may_nest_deeper([line], len(line)) and _depth(line) > MAX_DEPTH:
            return None, ("not_json", f"nested more than {MAX_DEPTH} levels deep")
        try:
            decoded = self.decoder.decode(line)
        except msgspec.ValidationError as error:  # JSON, but not an object, or a number out of range in a field read
            reason = "not_an_object" if str(error).startswith("Expected `object`") else "not_json"
            return None, (reason, str(error)[:200])
        except (msgspec.DecodeError, RecursionError) as error:  # also for a lone surrogate
            return None, ("not_json", str(error)[:200])
        text, raw_id = decoded.text, decoded.record_id
        if not isinstance(text, str) or not text.strip():
            return None, ("missing_text", f"field {self.text_field!r} is {_kind(text)}")
        if len(text) > self.max_chars:
            return None, ("too_large", f"the text has {len(text)} characters, limit {self.max_chars}")
        record_id = record_id_of(raw_id, line)
        if record_id is None:
            return None, ("invalid_id", f"field {self.id_field!r} is {_kind(raw_id)}")
        try:
            data = self.frame.line(record_id, text)
        except (UnicodeEncodeError, TypeError):  # orjson's JSONEncodeError is a TypeError
            return None, ("invalid_text", "the text is not valid UTF-8")
        if len(data) > self.max_record_bytes:
            return None, ("too_large", f"{len(data)} bytes with the prompt applied, limit {self.max_record_bytes}")
        return data, None


def _kind(value: object) -> str:
    if value is None:
        return "missing"
    if isinstance(value, str):
        return "empty" if not value.strip() else "too long"
    return f"a {type(value).__name__}"


class _Records:
    """The outcome of a block: the shard lines of its valid records (their bytes, in parts, the size and line
    number of each) and its rejections."""

    __slots__ = ("blank", "numbers", "parts", "rejected", "sizes")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.sizes: list[int] = []
        self.numbers: list[int] = []
        self.rejected: list[Rejected] = []
        self.blank = 0

    @classmethod
    def of(cls, lines: list[bytes], first: int, rules: _LineRules, *, per_line: bool) -> _Records:
        """The records of `lines`, numbered from `first`: as a block, or through the per-line rules alone."""
        records = cls()
        if per_line:
            records.add_each_line(lines, first, rules)
        else:
            records.add_block(lines, first, rules)
        return records

    def add_block(self, lines: list[bytes], first: int, rules: _LineRules) -> None:
        """`lines` (numbered from `first`): whole if every one is a plain record, else in halves; the few lines left
        around each unusual one go through the per-line rules."""
        plain = _plain_block(lines, rules)
        if plain is not None:
            self.parts.append(plain[0])
            self.sizes += plain[1]
            self.numbers += range(first, first + len(lines))
        elif len(lines) <= _SMALLEST_HALF:
            self.add_each_line(lines, first, rules)
        else:
            half = len(lines) // 2
            self.add_block(lines[:half], first, rules)
            self.add_block(lines[half:], first + half, rules)

    def add_each_line(self, lines: list[bytes], first: int, rules: _LineRules) -> None:
        for number, raw in enumerate(lines, start=first):
            self.add_line(number, *rules.shard_line(raw))

    def add_line(self, number: int, data: bytes | None, rejection: tuple[str, str] | None) -> None:
        if data is not None:
            self.parts.append(data)
            self.sizes.append(len(data))
            self.numbers.append(number)
        elif rejection is not None:
            self.rejected.append(Rejected(number, *rejection))
        else:
            self.blank += 1


def _plain_block(lines: list[bytes], rules: _LineRules) -> tuple[bytes, list[int]] | None:
    """The shard lines of `lines` (joined, and the size of each) if every one is a plain record, else None (the
    caller looks closer).

    Plain: within the size limit, UTF-8 JSON holding an object whose text is a non-blank string within the
    character limit, and whose id is a string the per-line rules keep as it is (1 to MAX_RECORD_ID_CHARS
    characters, no surrounding whitespace), or is absent or a number (then `record_id_of`, as the per-line rules,
    derives it). Everything else is left to the per-line rules. Each check is one pass over the block in C.
    """
    longest = max(map(len, lines), default=0)
    if (not lines or longest > rules.max_record_bytes or _utf8_problem(b"".join(lines)) is not None
            or _may_nest_deeper(lines, longest)):
        return None
    try:
        decoded = list(map(rules.decoder.decode, lines))  # stops at the first line that is not an object
    except (msgspec.DecodeError, RecursionError):
        return None
    texts = list(map(_TEXT, decoded))
    ids = list(map(_RECORD_ID, decoded))
    try:
        # `str.isspace` and `str.strip` refuse anything but a str with a TypeError
        if any(map(str.isspace, texts)) or "" in texts or max(map(len, texts)) > rules.max_chars:
            return None
        if set(map(type, ids)) != {str}:  # some ids absent, numbers or worse (None: rejected below)
            ids = list(map(record_id_of, ids, [raw.rstrip(b"\r\n") for raw in lines]))
        if list(map(str.strip, ids)) != ids or "" in ids or max(map(len, ids)) > MAX_RECORD_ID_CHARS:
            return None
        data, sizes = rules.frame.block(ids, texts)
    except TypeError:  # also a text orjson cannot write (never one it has read): the per-line rules explain
        return None
    return (data, sizes) if max(sizes) <= rules.max_record_bytes else None


_TEXT, _RECORD_ID = attrgetter("text"), attrgetter("record_id")


class _Open:
    """A shard being filled: its first `min_records` records in memory, the rest streamed to its writer."""

    __slots__ = ("buffer", "bytes", "first_line", "index", "last_line", "records", "writer")

    def __init__(self, index: int) -> None:
        self.index = index
        self.records = 0
        self.bytes = 0
        self.first_line = 0
        self.last_line = 0
        self.buffer: list[bytes] | None = []
        self.writer: ShardWriter | None = None

    def add(self, data: bytes, records: int, first_line: int, last_line: int) -> None:
        """Append `records` records, the shard lines `data` of lines `first_line` to `last_line`."""
        if not self.records:
            self.first_line = first_line
        self.records += records
        self.bytes += len(data)
        self.last_line = last_line
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


class _Shards:
    """Records in, shards out: cuts at the limits, keeps the last full shard open until the tail is known."""

    def __init__(self, limits: ShardLimits, sink: ShardSink) -> None:
        self.limits, self.sink = limits, sink
        self.result = ShardingResult()
        self.previous: _Open | None = None  # full, kept open until `current` reaches the minimum
        self.current = _Open(0)

    def add(self, data: bytes, sizes: list[int], numbers: list[int]) -> None:
        """Append records (their shard lines `data`, the size and line number of each), cutting shards where the
        limits say."""
        start = offset = 0
        while start < len(sizes):
            count, size = self._room(sizes, start)
            if not count:
                self._cut()
                continue
            end = start + count
            # a slice of all of `data` is `data` itself, not a copy: the common case, a block within one shard
            self.current.add(data[offset:offset + size], count, numbers[start], numbers[end - 1])
            if self.current.writer is None and self.current.records >= self.limits.min_records:
                self.current.spill(self.sink)
                self._close_previous()
            start, offset = end, offset + size
        self.result.valid += len(sizes)

    def _room(self, sizes: list[int], start: int) -> tuple[int, int]:
        """(How many records from `start` the current shard takes before it must be cut, their bytes).

        A record fits while the shard stays within the cut's record count and bytes; a shard's first record
        always fits (one record is never larger than the cut's bytes).
        """
        current, limits = self.current, self.limits
        totals = list(accumulate(sizes[start:start + limits.cut_records - current.records], initial=current.bytes))
        count = bisect_right(totals, limits.cut_bytes) - 1
        if not count and not current.records:
            count = 1
        return count, totals[count] - current.bytes

    def _cut(self) -> None:
        self._close_previous()  # `current` holds at least the minimum, so `previous` is final
        self.previous, self.current = self.current, _Open(self.current.index + 1)

    def _close_previous(self) -> None:
        if self.previous is not None:
            self.result.shards.append(self.previous.close())
            self.previous = None

    def finish(self) -> ShardingResult:
        current = self.current
        if current.records:
            if current.writer is None and self.previous is not None:
                self.previous.absorb(current)  # the short tail joins the full shard before it
            else:
                if current.writer is None:
                    current.spill(self.sink)  # the whole corpus is below the minimum: one short shard
                self._close_previous()
                self.result.shards.append(current.close())
        self._close_previous()
        return self.result


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


def iter_line_blocks(chunks: Iterable[bytes], max_line_bytes: int) -> Iterator[list[bytes]]:
    """The lines of a byte stream given in arbitrary chunks (an S3 body), a list per chunk, without newlines.

    A line longer than `max_line_bytes` is not accumulated: it is given cut to `max_line_bytes + 3` bytes (so the
    sharder rejects it as too large) and the rest of it is skipped, so one huge line cannot exhaust memory.
    """
    rest = b""
    skipping = False  # inside a huge line already given
    for chunk in chunks:
        if not chunk:
            continue
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        if skipping and lines:
            del lines[0]  # the end of the huge line
            skipping = False
        if len(rest) > max_line_bytes + 2:
            if not skipping:
                lines.append(rest[: max_line_bytes + 3])
            skipping, rest = True, b""
        if lines:
            yield lines
    if rest and not skipping:
        yield [rest]


def iter_lines(chunks: Iterable[bytes], max_line_bytes: int) -> Iterator[bytes]:
    """`iter_line_blocks`, line by line."""
    return chain.from_iterable(iter_line_blocks(chunks, max_line_bytes))
