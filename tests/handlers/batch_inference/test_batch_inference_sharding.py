"""The sharder's pure core, as properties over generated corpora (hypothesis): every valid line in exactly one
shard, in corpus order; every shard within the per-job bounds (a corpus below the minimum gives one short shard);
every bad line rejected with its line number; the same corpus always gives the same shards; a byte stream cut
anywhere gives the same lines."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_inference.records import InputFrame, content_hash_id
from batch_inference.sharding import MemorySink, ShardLimits, iter_lines, shard_corpus

FRAME = InputFrame.build("anthropic.claude-3-haiku-20240307-v1:0", "Summarize: {{content}}", max_tokens=64,
                         temperature=0.0)
MAX_RECORD_BYTES = 600


def _valid(index: int, text: str, with_id: bool) -> bytes:
    record = {"id": f"doc-{index}", "text": text} if with_id else {"text": text, "n": index}
    return json.dumps(record).encode()


BAD_LINES = {  # kind -> (line, the reason it is rejected for)
    "truncated": (b'{"id": "x", "text": ', "not_json"),
    "list": (b'["a", "list"]', "not_an_object"),
    "no_text": (b'{"id": "y", "body": "no text field"}', "missing_text"),
    "bad_id": (b'{"id": {"nested": true}, "text": "id of the wrong type"}', "invalid_id"),
    "huge": (json.dumps({"id": "big", "text": "x" * 2000}).encode(), "too_large"),
    "surrogate": (b'{"id": "s", "text": "lone \\ud800 half"}', "not_json"),  # JSON, but not Unicode
    "latin1": (b'{"id": "l", "text": "caf\xe9"}', "not_json"),  # not UTF-8
    "latin1_elsewhere": (b'{"id": "m", "text": "fine", "note": "caf\xe9"}', "not_json"),  # a field not read
    "huge_number_id": (b'{"id": 1e400, "text": "t"}', "not_json"),  # JSON, but not a number Python holds
    "empty_text": (b'{"id": "e", "text": "   "}', "missing_text"),
    "spaced_id": (b'{"id": "  padded  ", "text": "kept, id stripped"}', None),
}

line_kinds = st.one_of(
    st.tuples(st.just("valid"), st.text(min_size=1, max_size=60).filter(str.strip), st.booleans()),
    st.tuples(st.sampled_from(sorted(BAD_LINES)), st.just(""), st.just(False)),
    st.tuples(st.just("blank"), st.sampled_from(["", "  ", "\r"]), st.just(False)),
)
limits_strategy = st.integers(min_value=1, max_value=6).flatmap(
    lambda minimum: st.tuples(st.just(minimum), st.integers(min_value=2 * minimum - 1, max_value=3 * minimum + 4),
                              st.integers(min_value=2 * minimum * MAX_RECORD_BYTES,
                                          max_value=(3 * minimum + 4) * MAX_RECORD_BYTES)))


def _corpus(kinds: list[tuple[str, str, bool]]) -> tuple[list[bytes], dict[int, bytes], dict[int, str]]:
    lines: list[bytes] = []
    valid: dict[int, bytes] = {}
    bad: dict[int, str] = {}
    for number, (kind, text, with_id) in enumerate(kinds, start=1):
        if kind == "valid":
            line = _valid(number, text, with_id)
            valid[number] = line
        elif kind == "blank":
            line = text.encode()
        else:
            line, reason = BAD_LINES[kind]
            if reason is None:  # valid after all: the slow path's normalisation
                valid[number] = line
            else:
                bad[number] = reason
        lines.append(line)
    return lines, valid, bad


def _shard_lines(sink: MemorySink) -> list[list[dict[str, object]]]:
    return [[json.loads(line) for line in sink.shards[i].splitlines()] for i in sorted(sink.shards)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.lists(line_kinds, max_size=60), bounds=limits_strategy)
def test_every_valid_line_lands_in_exactly_one_shard_within_the_bounds(kinds: list[tuple[str, str, bool]],
                                                                      bounds: tuple[int, int, int]) -> None:
    minimum, maximum, max_bytes = bounds
    limits = ShardLimits(minimum, maximum, max_bytes, MAX_RECORD_BYTES)
    lines, valid, bad = _corpus(kinds)
    sink = MemorySink()
    result = shard_corpus(lines, FRAME, limits, sink, text_field="text", id_field="id")

    shards = _shard_lines(sink)
    ids = [record["recordId"] for shard in shards for record in shard]
    expected_ids = [str(json.loads(line)["id"]).strip() if "id" in json.loads(line) else content_hash_id(line)
                    for line in valid.values()]
    assert ids == expected_ids  # each valid line once, in corpus order, none invented
    assert result.valid == len(valid) and result.lines == len(lines)
    assert [(r.line_number, r.reason) for r in result.rejected] == sorted(bad.items())
    assert [s.records for s in result.shards] == [len(shard) for shard in shards]
    for shard, described in zip(shards, result.shards, strict=True):
        assert len(shard) <= maximum
        assert described.bytes == len(sink.shards[described.index]) <= max_bytes
        if len(result.shards) > 1 or len(valid) >= minimum:
            assert len(shard) >= minimum  # the tail is merged, never left below the minimum
    for shard in shards:  # the prompt template wraps the text of every record
        for record in shard:
            text = record["modelInput"]["messages"][0]["content"][0]["text"]  # type: ignore[index]
            assert text.startswith("Summarize: ")


@settings(max_examples=60, deadline=None)
@given(kinds=st.lists(line_kinds, min_size=1, max_size=40), bounds=limits_strategy)
def test_the_same_corpus_always_gives_the_same_shards(kinds: list[tuple[str, str, bool]],
                                                      bounds: tuple[int, int, int]) -> None:
    limits = ShardLimits(bounds[0], bounds[1], bounds[2], MAX_RECORD_BYTES)
    lines, _, _ = _corpus(kinds)
    first, second = MemorySink(), MemorySink()
    shard_corpus(lines, FRAME, limits, first, text_field="text", id_field="id")
    shard_corpus(lines, FRAME, limits, second, text_field="text", id_field="id")
    assert first.shards == second.shards


@settings(max_examples=100, deadline=None)
@given(lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30),
       cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10))
def test_a_stream_cut_anywhere_gives_the_same_lines(lines: list[bytes], cuts: list[int]) -> None:
    data = b"\n".join(lines)
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in itertools.pairwise(points)]
    expected = data.split(b"\n")
    if expected[-1] == b"":  # a trailing newline (or nothing at all) ends the last line; it is not a line itself
        expected.pop()
    assert list(iter_lines(chunks, max_line_bytes=1000)) == expected


def test_a_line_longer_than_the_limit_is_cut_short_not_held_in_memory() -> None:
    huge = b"x" * 10_000
    chunks = [b'{"text": "a"}\n', huge[:4000], huge[4000:], b'\n{"text": "b"}\n']
    lines = list(iter_lines(chunks, max_line_bytes=100))
    assert lines == [b'{"text": "a"}', b"x" * 103, b'{"text": "b"}']


def test_a_corpus_below_the_minimum_gives_one_short_shard() -> None:
    sink = MemorySink()
    lines = [_valid(i, "short", True) for i in range(3)]
    result = shard_corpus(lines, FRAME, ShardLimits(5, 20, 100_000, MAX_RECORD_BYTES), sink, text_field="text",
                          id_field="id")
    assert [s.records for s in result.shards] == [3]


def test_a_tail_below_the_minimum_joins_the_shard_before_it() -> None:
    sink = MemorySink()
    lines = [_valid(i, "text", True) for i in range(13)]
    result = shard_corpus(lines, FRAME, ShardLimits(3, 6, 100_000, MAX_RECORD_BYTES), sink, text_field="text",
                          id_field="id")
    # cut at 6 - 3 + 1 = 4 records: 4, 4, 4 and a tail of 1 that joins the last
    assert [s.records for s in result.shards] == [4, 4, 5]
    assert [(s.first_line, s.last_line) for s in result.shards] == [(1, 4), (5, 8), (9, 13)]


@pytest.mark.parametrize(("minimum", "maximum", "max_bytes", "message"), [
    (0, 10, 10_000, "min_records"),
    (5, 8, 100_000, "2 x min_records - 1"),
    (5, 20, 999, "2 x min_records x max_record_bytes"),
])
def test_limits_that_leave_no_room_for_the_tail_are_refused(minimum: int, maximum: int, max_bytes: int,
                                                            message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ShardLimits(minimum, maximum, max_bytes, 100)


def test_a_text_longer_than_the_model_accepts_is_rejected_not_truncated() -> None:
    lines = [_valid(1, "short", True), _valid(2, "y" * 50, True), _valid(3, "z" * 20, True)]
    result = shard_corpus(lines, FRAME, ShardLimits(1, 10, 100_000, MAX_RECORD_BYTES), MemorySink(),
                          text_field="text", id_field="id", max_text_chars=20)
    assert [(r.line_number, r.reason, r.detail) for r in result.rejected] == [
        (2, "too_large", "the text has 50 characters, limit 20")]
    assert result.valid == 2


@pytest.mark.parametrize(("room", "per_shard"), [(0, 3), (-1, 2)])
def test_a_shard_is_cut_at_the_record_that_would_pass_the_byte_limit(room: int, per_shard: int) -> None:
    lines = [_valid(i, "same size", True) for i in range(10, 22)]  # 12 shard lines of one size
    size = len(FRAME.line("doc-10", "same size"))
    limits = ShardLimits(1, 100, 3 * size + room, size)  # room for exactly 3 lines, or one byte less
    sink = MemorySink()
    result = shard_corpus(lines, FRAME, limits, sink, text_field="text", id_field="id")
    assert [s.records for s in result.shards] == [per_shard] * (12 // per_shard)
    assert [s.bytes for s in result.shards] == [per_shard * size] * (12 // per_shard)


def test_the_text_and_the_id_must_be_different_fields() -> None:
    with pytest.raises(ValueError, match=r"'body'.*must differ"):
        shard_corpus([_valid(1, "x", True)], FRAME, ShardLimits(1, 10, 100_000, MAX_RECORD_BYTES), MemorySink(),
                     text_field="body", id_field="body")
