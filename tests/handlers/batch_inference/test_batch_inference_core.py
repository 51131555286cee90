"""Pure cores: joining a job's real-shaped output on recordId, model inputs, job names and tokens, backoff."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from batch_inference import backoff, jobs
from batch_inference.joining import join_output, shard_record_ids
from batch_inference.records import InputFrame, converse_request, model_family, output_text
from tests.handlers.batch_inference.fakes import error_line, native_output_line, output_line

SHARD = [json.dumps({"recordId": f"DOC{i:03d}", "modelInput": {"messages": []}}).encode() for i in range(6)]


def _lines(rows: list[dict[str, object]]) -> list[bytes]:
    return [json.dumps(row).encode() for row in rows]


def test_output_out_of_order_with_error_lines_is_joined_on_record_id() -> None:
    output = _lines([output_line("DOC004", "four"), error_line("DOC001"), output_line("DOC000", "zero"),
                     output_line("DOC005", "five"), output_line("DOC002", "two"), error_line("DOC003", 429,
                                                                                          "Too many tokens")])
    manifest = {"totalRecordCount": 6, "processedRecordCount": 6, "successRecordCount": 4, "errorRecordCount": 2}
    joined = join_output(shard_record_ids(SHARD), output, manifest)
    assert joined.order == [f"DOC{i:03d}" for i in range(6)]
    assert {r: output_text(o) for r, o in joined.succeeded.items()} == {
        "DOC000": "zero", "DOC002": "two", "DOC004": "four", "DOC005": "five"}
    assert {r: (f.reason, f.detail) for r, f in joined.failed.items()} == {
        "DOC001": ("model_error", "400: Malformed input request"), "DOC003": ("model_error", "429: Too many tokens")}
    assert joined.manifest_mismatches == [] and joined.unexpected == 0


def test_a_partially_completed_job_leaves_missing_records_failed_and_the_manifest_disagreeing() -> None:
    output = _lines([output_line("DOC000", "zero"), output_line("DOC999", "not ours"), error_line("DOC002")])
    manifest = {"totalRecordCount": 6, "processedRecordCount": 3, "successRecordCount": 2, "errorRecordCount": 1}
    joined = join_output(shard_record_ids(SHARD), [*output, b"", b"not json"], manifest)
    assert sorted(joined.succeeded) == ["DOC000"]
    assert {r: f.reason for r, f in joined.failed.items()} == {
        "DOC001": "missing_output", "DOC002": "model_error", "DOC003": "missing_output", "DOC004": "missing_output",
        "DOC005": "missing_output"}
    assert joined.unexpected == 1 and joined.unreadable == 1
    assert joined.manifest_mismatches == ["manifest successRecordCount 2 != 1 success lines in the output"]


def test_a_record_id_twice_in_the_output_counts_once() -> None:
    output = _lines([output_line("DOC000", "first"), output_line("DOC000", "second")])
    joined = join_output(["DOC000"], output, None)
    assert output_text(joined.succeeded["DOC000"]) == "first" and joined.failed == {}


CONVERSE_MODELS = ["anthropic.claude-3-haiku-20240307-v1:0", "amazon.nova-lite-v1:0", "meta.llama3-8b-instruct-v1:0",
                   "mistral.mistral-large-2402-v1:0"]


@pytest.mark.parametrize("model", CONVERSE_MODELS)
def test_every_model_gets_the_same_converse_body_from_the_one_template(model: str) -> None:
    frame = InputFrame.build(model, "Labels: {{labels}}\n<item>{{content}}</item>", max_tokens=100,
                             temperature=0.2, labels=("a", "b"))
    line = json.loads(frame.line("r1", 'He said "hi"\n\u00e9'))
    body = {"messages": [{"role": "user", "content": [{"text": 'Labels: a, b\n<item>He said "hi"\n\u00e9</item>'}]}],
            "inferenceConfig": {"maxTokens": 100, "temperature": 0.2}}
    assert line == {"recordId": "r1", "modelInput": body}
    # Mode B sends that body as it is: Converse's own request, validated by botocore's bedrock-runtime model.
    assert converse_request(line["modelInput"]) == body
    from botocore.session import get_session
    from botocore.validate import validate_parameters
    shape = get_session().get_service_model("bedrock-runtime").operation_model("Converse").input_shape
    validate_parameters({"modelId": model, **converse_request(line["modelInput"])}, shape)
    with_system = {**body, "system": [{"text": "Be brief."}]}
    assert converse_request(with_system)["system"] == [{"text": "Be brief."}]


def test_model_inputs_in_the_native_format_convert_to_converse() -> None:
    claude = InputFrame.build("anthropic.claude-3-haiku-20240307-v1:0", "Labels: {{labels}}\n<item>{{content}}"
                              "</item>", max_tokens=100, temperature=0.2, labels=("a", "b"), request_format="native")
    line = json.loads(claude.line("r1", 'He said "hi"\n\u00e9'))
    assert line == {"recordId": "r1", "modelInput": {
        "anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "temperature": 0.2,
        "messages": [{"role": "user", "content": [{"type": "text", "text":
                                                    'Labels: a, b\n<item>He said "hi"\n\u00e9</item>'}]}]}}
    assert converse_request(line["modelInput"]) == {
        "messages": [{"role": "user", "content": [{"text": 'Labels: a, b\n<item>He said "hi"\n\u00e9</item>'}]}],
        "inferenceConfig": {"maxTokens": 100, "temperature": 0.2}}
    nova = json.loads(InputFrame.build("amazon.nova-lite-v1:0", "{{content}}", max_tokens=10, temperature=0.0,
                                       request_format="native").line("r2", "x"))["modelInput"]
    assert nova["schemaVersion"] == "messages-v1"
    assert converse_request(nova)["inferenceConfig"] == {"maxTokens": 10, "temperature": 0.0}
    assert output_text({"output": {"message": {"content": [{"text": "nova says"}]}}}) == "nova says"
    assert output_text(native_output_line("r3", "claude says")["modelOutput"]) == "claude says"
    assert model_family("eu.anthropic.claude-3-haiku-20240307-v1:0") == "anthropic"
    with pytest.raises(ValueError, match="Anthropic Claude and Amazon Nova"):
        model_family("meta.llama3-8b-instruct-v1:0")


def test_job_names_and_tokens_depend_only_on_run_and_shard() -> None:
    name = jobs.job_name("ai-pipelines-dev-batchinf-job", "run-2026-06-27", "00003")
    assert name == jobs.job_name("ai-pipelines-dev-batchinf-job", "run-2026-06-27", "00003")
    assert name != jobs.job_name("ai-pipelines-dev-batchinf-job", "run-2026-06-28", "00003")
    assert len(name) <= 63 and name.endswith("-00003")
    assert jobs.client_request_token("run-2026-06-27", "00003") == "run-2026-06-27-00003"
    odd = jobs.client_request_token("run_2026.06/27", "00003")
    assert odd.startswith("run-2026-06-27-00003-") and odd.replace("-", "").isalnum()
    with pytest.raises(ValueError, match="63"):
        jobs.job_name("x" * 50, "run", "00000")


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "Converse")


@pytest.mark.parametrize(("error", "kind"), [
    (_client_error("ThrottlingException"), "throttled"), (_client_error("ModelTimeoutException"), "timeout"),
    (_client_error("ServiceUnavailableException"), "transient"), (_client_error("ValidationException"), "record"),
    (_client_error("AccessDeniedException"), "systemic"), (ReadTimeoutError(endpoint_url="https://x"), "timeout"),
    (ValueError("unreadable answer"), "record"),
])
def test_errors_are_classified_for_their_record(error: BaseException, kind: str) -> None:
    assert backoff.classify(error) == kind


def test_backoff_retries_with_full_jitter_then_gives_up() -> None:
    slept: list[float] = []
    attempts: list[int] = []

    def always_throttled() -> None:
        attempts.append(1)
        raise _client_error("ThrottlingException")

    draws = iter([0.25, 0.5, 0.75])
    with pytest.raises(ClientError):
        backoff.with_backoff(always_throttled, classify=backoff.classify, max_attempts=4, base_seconds=1,
                             cap_seconds=5, sleep=slept.append, rand=lambda: next(draws))
    # Full jitter: each delay is a fresh draw times its ceiling, min(cap, base * 2**attempt) = 2, 4, 5 (capped
    # before scaling). Without jitter the delays would be the ceilings themselves.
    assert len(attempts) == 4 and slept == [0.5, 2.0, 3.75]

    def rejected() -> None:
        raise _client_error("ValidationException")

    with pytest.raises(ClientError):
        backoff.with_backoff(rejected, classify=backoff.classify, max_attempts=4, sleep=slept.append)
    assert len(slept) == 3  # a record-level refusal is not retried
