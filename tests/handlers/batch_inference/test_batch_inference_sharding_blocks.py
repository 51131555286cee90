"""The sharder's block path against its per-line rules: for any corpus, any limits and any block size, the same
shard bytes, the same shards (records, bytes, first and last line) and the same rejections (line number, reason,
detail), blank lines and counts. Blocks mix plain records with every kind of line the per-line rules decide:
bad lines in the middle of a block, blanks, bytes that are not UTF-8, lines at and just past the size limit,
missing ids (content hash), ids to strip or given as numbers, texts that need escapes, and fields the sharder does
not read that are not UTF-8 or not JSON."""

from __future__ import annotations

import itertools
import json
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_inference import sharding
from batch_inference.records import InputFrame, content_hash_id
from batch_inference.sharding import MemorySink, ShardingResult, ShardLimits, shard_blocks, shard_corpus

# a template with characters that need escapes, so the frame's prefix and suffix are escaped too
FRAME = InputFrame.build("anthropic.claude-3-haiku-20240307-v1:0", 'Summarize "this":\n{{content}}\n--', max_tokens=64,
                         temperature=0.0)
MAX_RECORD_BYTES = 400


def _at_size(size: int, tail: bytes = b"") -> bytes:
    """A valid line of exactly `size` bytes (`tail` included), all of it text."""
    start, end = b'{"id": "edge", "text": "', b'"}' + tail
    return start + b"w" * (size - len(start) - len(end)) + end


def _padded(size: int, tail: bytes = b"") -> bytes:
    """A valid line of exactly `size` bytes (`tail` included) with a short text: its shard line is small."""
    start, end = b'{"id": "pad", "text": "short", "pad": "', b'"}' + tail
    return start + b"p" * (size - len(start) - len(end)) + end


ODD_LINES = [  # every one decided by the per-line rules, several of them valid after all
    b"not json", b'{"id": "x", "text": ', b'["a", "list"]', b"null", b"7", b'"a string"',
    b'{"id": "y", "body": "no text field"}', b'{"id": "e", "text": "   "}', b'{"id": "e", "text": ""}',
    b'{"id": "e", "text": 5}', b'{"id": {"nested": true}, "text": "t"}', b'{"id": true, "text": "t"}',
    b'{"id": "", "text": "t"}', b'{"id": "   ", "text": "t"}', b'{"id": "' + b"i" * 257 + b'", "text": "t"}',
    b'{"id": "  padded  ", "text": "id stripped"}', b'{"id": 42, "text": "a number id"}',
    b'{"id": null, "text": "hash"}', b'{"text": "no id: a content hash"}', b'  {"text": "no id, spaced"}  ',
    b'{"id": "s", "text": "lone \\ud800 half"}', b'{"id": "l", "text": "caf\xe9"}', b"\xff\xfe",
    b'{"id": "crlf", "text": "ends in CR"}\r',
    b'{"id": "q", "text": "quote \\" and \\\\ and \\n and \\u0001 and \\u00e9"}',
    b'{"id": "dup", "text": "a", "text": "b"}', b'{"id": "u", "text": "t", "note": "caf\xe9"}',
    b'{"id": "u", "text": "t", "deep": [1, {"note": "\xff"}]}', b'{"id": "big", "text": "t", "n": 1e400}',
    b'{"id": "ctl", "text": "t", "note": "\x01"}', b'{"id": "nan", "text": "t", "n": NaN}',
    b'{"id": 1e400, "text": "t"}',
    b'{"id": "a", "text": "x"}, {"id": "b", "text": "y"}', b'{"a": [{}', b"{}]}",
    _at_size(MAX_RECORD_BYTES - 200), _at_size(MAX_RECORD_BYTES), _at_size(MAX_RECORD_BYTES + 1),
    _at_size(MAX_RECORD_BYTES + 1, b"\r"), _at_size(MAX_RECORD_BYTES + 3, b"\r\n"), _padded(MAX_RECORD_BYTES),
    _padded(MAX_RECORD_BYTES + 1), _padded(MAX_RECORD_BYTES + 1, b"\r"), _padded(MAX_RECORD_BYTES + 2, b"\r\n"),
    _padded(MAX_RECORD_BYTES + 3, b"\r\n"), b"", b"  ", b"\r",
]


def _plain(index: int, text: str, with_id: bool) -> bytes:
    record = {"id": f"doc-{index}", "text": text} if with_id else {"text": text, "n": index}
    return json.dumps(record, ensure_ascii=False).encode()


lines_strategy = st.lists(st.one_of(
    st.tuples(st.integers(0, 10_000), st.text(min_size=1, max_size=60).filter(str.strip), st.booleans()).map(
        lambda args: _plain(*args)),
    st.sampled_from(ODD_LINES),
), max_size=80)
limits_strategy = st.integers(min_value=1, max_value=5).flatmap(
    lambda minimum: st.builds(ShardLimits, st.just(minimum), st.integers(2 * minimum - 1, 3 * minimum + 4),
                              st.integers(2 * minimum * MAX_RECORD_BYTES, (3 * minimum + 4) * MAX_RECORD_BYTES),
                              st.just(MAX_RECORD_BYTES)))


def _shard(lines: list[bytes], limits: ShardLimits, *, per_line: bool,
           max_text_chars: int | None = None) -> tuple[dict[int, bytes], ShardingResult]:
    sink = MemorySink()
    result = shard_corpus(lines, FRAME, limits, sink, text_field="text", id_field="id", max_text_chars=max_text_chars,
                          per_line=per_line)
    return sink.shards, result


def _assert_same(block: tuple[dict[int, bytes], ShardingResult], each: tuple[dict[int, bytes], ShardingResult]) -> None:
    (block_shards, block_result), (each_shards, each_result) = block, each
    assert block_shards == each_shards
    assert block_result == each_result  # shards (records, bytes, lines), rejections (line, reason, detail), counts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=lines_strategy, limits=limits_strategy, block_lines=st.sampled_from([1, 2, 3, 8, 13, 64, 1024]),
       max_text_chars=st.sampled_from([None, 30]))
def test_the_block_path_gives_what_the_per_line_rules_give(lines: list[bytes], limits: ShardLimits, block_lines: int,
                                                           max_text_chars: int | None) -> None:
    with mock.patch.object(sharding, "BLOCK_LINES", block_lines):
        block = _shard(lines, limits, per_line=False, max_text_chars=max_text_chars)
    _assert_same(block, _shard(lines, limits, per_line=True, max_text_chars=max_text_chars))


def test_a_bad_line_in_the_middle_of_a_block_is_rejected_alone_with_its_number() -> None:
    lines = [_plain(i, f"text {i}", True) for i in range(1, 41)]
    lines[16] = b'{"id": "broken", "text": '
    lines[22] = b""
    lines[30] = b'{"id": "l", "text": "caf\xe9"}'
    limits = ShardLimits(2, 10, 100_000, MAX_RECORD_BYTES)
    block = _shard(lines, limits, per_line=False)
    _assert_same(block, _shard(lines, limits, per_line=True))
    shards, result = block
    assert [(r.line_number, r.reason) for r in result.rejected] == [(17, "not_json"), (31, "not_json")]
    assert (result.valid, result.blank, result.lines) == (37, 1, 40)
    ids = [json.loads(line)["recordId"] for i in sorted(shards) for line in shards[i].splitlines()]
    assert ids == [f"doc-{i}" for i in range(1, 41) if i not in (17, 23, 31)]


def test_lines_and_shard_lines_at_the_size_limit_are_kept_and_one_byte_more_is_rejected() -> None:
    limit = len(FRAME.line("edge", "w" * 174))  # the shard line of `_at_size(200)`
    lines = [_plain(1, "before", True), _at_size(200), _at_size(201), _padded(limit), _padded(limit + 1),
             _padded(limit + 1, b"\r"), _plain(7, "after", True)]
    limits = ShardLimits(1, 10, 100_000, limit)
    block = _shard(lines, limits, per_line=False)
    _assert_same(block, _shard(lines, limits, per_line=True))
    assert [(r.line_number, r.reason) for r in block[1].rejected] == [(3, "too_large"), (5, "too_large")]
    assert block[1].valid == 5


def test_lines_without_an_id_get_the_hash_of_their_bytes_in_a_block() -> None:
    lines = [b'{"text": "first"}', b'{"text": "second"}\r', b'{"id": null, "text": "third"}', _plain(4, "given", True)]
    limits = ShardLimits(1, 10, 100_000, MAX_RECORD_BYTES)
    block = _shard(lines, limits, per_line=False)
    _assert_same(block, _shard(lines, limits, per_line=True))
    ids = [json.loads(line)["recordId"] for line in block[0][0].splitlines()]
    assert ids == [content_hash_id(b'{"text": "first"}'), content_hash_id(b'{"text": "second"}'),
                   content_hash_id(b'{"id": null, "text": "third"}'), "doc-4"]


@settings(max_examples=100, deadline=None)
@given(lines=lines_strategy, cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=8))
def test_blocks_of_any_length_give_the_same_shards_as_lines(lines: list[bytes], cuts: list[int]) -> None:
    points = sorted({min(c, len(lines)) for c in cuts} | {0, len(lines)})
    blocks = [lines[a:b] for a, b in itertools.pairwise(points)]
    limits = ShardLimits(2, 5, 2 * 5 * MAX_RECORD_BYTES, MAX_RECORD_BYTES)
    sink = MemorySink()
    result = shard_blocks(blocks, FRAME, limits, sink, text_field="text", id_field="id")
    _assert_same((sink.shards, result), _shard(lines, limits, per_line=True))


@given(pairs=st.lists(st.tuples(st.text(min_size=1, max_size=20), st.text(max_size=40)), max_size=20))
def test_a_block_of_shard_lines_is_the_lines_joined_with_their_sizes(pairs: list[tuple[str, str]]) -> None:
    ids, texts = [p[0] for p in pairs], [p[1] for p in pairs]
    lines = [FRAME.line(record_id, text) for record_id, text in pairs]
    assert FRAME.block(ids, texts) == (b"".join(lines), [len(line) for line in lines])


NESTING = [  # around MAX_DEPTH (512): refused by one fixed rule on both paths, whatever the stack depth
    b'{"id": "deep", "text": "t", "m": ' + b"[" * 512 + b"]" * 512 + b"}",  # 513 levels with the record
    b'{"id": "edge", "text": "t", "m": ' + b"[" * 511 + b"]" * 511 + b"}",  # 512 levels: kept
    b'{"id": "deeper", "text": "t", "m": ' + b"[" * 2000 + b"]" * 2000 + b"}",
    b'{"id": "wide", "text": "t", "m": [' + b",".join([b"{}"] * 700) + b"]}",  # many brackets, shallow: kept
    b'{"id": "quoted", "text": "' + b"[" * 700 + b'"}',  # brackets inside a string: kept
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.one_of(st.sampled_from(NESTING), st.builds(_plain, st.integers(0, 99), st.just("plain"),
                                                                     st.booleans())), max_size=40),
       block_lines=st.sampled_from([1, 8, 1024]))
def test_deep_nesting_is_refused_the_same_way_on_both_paths(lines: list[bytes], block_lines: int) -> None:
    limits = ShardLimits(1, 10, 1_000_000, 10_000)
    with mock.patch.object(sharding, "BLOCK_LINES", block_lines):
        block = _shard(lines, limits, per_line=False)
    _assert_same(block, _shard(lines, limits, per_line=True))
    deep = {number for number, line in enumerate(lines, start=1) if line.startswith((b'{"id": "deep', ))}
    assert {(r.line_number, r.reason) for r in block[1].rejected} == {(n, "not_json") for n in deep}
