"""The pure core of the event_processor handler: configuration, keys, intake, prompts, backoff, publication chunks,
result shapes. No AWS."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from common.env import ConfigurationError
from common.retry import Backoff, Budget, BudgetExhaustedError, ManualClock, retry
from event_processor import answers, model, publish
from event_processor.config import MODEL_BACKOFF, Settings
from event_processor.events import InputReference, ModelAnswer, Usage
from event_processor.intake import MAX_BODY_BYTES, Accepted, IntakeRules, Rejected, classify
from event_processor.keys import MissingKeyFieldError, content_version, idempotency_key, versioned_key
from event_processor.prompt import system, user_turn
from event_processor.results import StoredResult
from tests.handlers.event_processor.conftest import ENVIRONMENT
from tests.support.stacks import SHIPPED_STACKS, function_environment

RULES = IntakeRules(accepted_sources=frozenset({"com.example.documents"}),
                    accepted_detail_types=frozenset({"DocumentSubmitted"}), key_fields=("source", "detail.itemId"),
                    max_input_chars=100)


def body(detail: Any, **overrides: Any) -> str:
    return json.dumps({"id": "e-1", "source": "com.example.documents", "detail-type": "DocumentSubmitted",
                       "detail": detail, **overrides})


# --- configuration ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_the_handler_accepts_the_environment_every_shipped_stack_gives_it(stack):
    environment = function_environment("event_processor", stack)

    settings = Settings.from_env(environment)

    assert settings.results_table == environment["RESULTS_TABLE"]
    assert settings.model_id == environment["MODEL_ID"]
    assert "{{content}}" in settings.prompt_template and settings.labels


def test_prod_invokes_the_inference_profile_and_dev_the_model():
    assert function_environment("event_processor", "prod")["MODEL_ID"].startswith("eu.")
    assert not function_environment("event_processor", "dev")["MODEL_ID"].startswith("eu.")


@pytest.mark.parametrize(("change", "message"), [
    ({"RESULTS_TABLE": ""}, "RESULTS_TABLE is not set"),
    ({"TASK": "translate"}, "TASK='translate' is not one of classify"),
    ({"PROMPT_TEMPLATE": "no placeholder"}, "PROMPT_TEMPLATE has no {{content}}"),
    ({"LABELS": ""}, "PROMPT_TEMPLATE uses {{labels}} but LABELS is empty"),
    ({"LABELS": '["a", 3]'}, "LABELS='[\"a\", 3]' is not a JSON list of non-empty strings"),
    ({"ACCEPTED_SOURCES": "[]"}, "ACCEPTED_SOURCES is an empty list"),
    ({"TEMPERATURE": "2"}, "TEMPERATURE=2.0 is outside [0.0, 1.0]"),
    ({"RECORD_CONCURRENCY": "11"}, "RECORD_CONCURRENCY=11 is outside [1, 10]"),
])
def test_a_bad_environment_fails_at_cold_start_naming_the_variable(change, message):
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        Settings.from_env({**ENVIRONMENT, **change})


def test_the_processing_profile_changes_with_the_prompt_and_model_only():
    settings = Settings.from_env(ENVIRONMENT)
    same = Settings.from_env({**ENVIRONMENT, "RECORD_CONCURRENCY": "3"})
    other_prompt = Settings.from_env({**ENVIRONMENT, "PROMPT_TEMPLATE": "Label {{labels}}: {{content}}"})
    other_model = Settings.from_env({**ENVIRONMENT, "MODEL_ID": "amazon.nova-lite-v1:0"})
    assert settings.processing_profile == same.processing_profile
    assert len({settings.processing_profile, other_prompt.processing_profile, other_model.processing_profile}) == 3


# --- keys and intake ----------------------------------------------------------------------------------------


def test_two_events_for_one_item_share_a_key_and_two_items_do_not():
    one = {"id": "e-1", "source": "s", "detail": {"itemId": "42"}}
    again = {"id": "e-2", "source": "s", "detail": {"itemId": "42"}}
    other = {"id": "e-3", "source": "s", "detail": {"itemId": "43"}}
    fields = ("source", "detail.itemId")
    assert idempotency_key(one, fields) == idempotency_key(again, fields) != idempotency_key(other, fields)
    assert idempotency_key(one, ()) == "e-1" != idempotency_key(again, ())


def test_a_missing_key_field_is_named():
    with pytest.raises(MissingKeyFieldError, match=r"detail\.itemId"):
        idempotency_key({"id": "e-1", "detail": {}}, ("detail.itemId",))


def test_an_accepted_event_carries_its_item_and_key():
    verdict = classify(body({"itemId": "doc-1", "content": "hello", "reference": "s3://b/k"}), RULES)

    assert isinstance(verdict, Accepted)
    assert verdict.event.detail.itemId == "doc-1" and verdict.event.detail_type == "DocumentSubmitted"
    assert verdict.identity == idempotency_key(json.loads(body({"itemId": "doc-1"})), RULES.key_fields)
    assert verdict.version == content_version("hello", "s3://b/k")
    assert verdict.key == versioned_key(verdict.identity, verdict.version)


def test_a_key_follows_the_content_so_an_edited_item_is_a_new_version():
    original = classify(body({"itemId": "doc-1", "content": "hello"}), RULES)
    retried = classify(body({"itemId": "doc-1", "content": "hello"}, id="e-2"), RULES)
    edited = classify(body({"itemId": "doc-1", "content": "hello, edited"}), RULES)
    moved = classify(body({"itemId": "doc-1", "content": "hello", "reference": "s3://b/new"}), RULES)
    assert isinstance(original, Accepted) and isinstance(retried, Accepted)
    assert isinstance(edited, Accepted) and isinstance(moved, Accepted)
    assert original.key == retried.key  # a retried PutEvents: the same item, the same version
    assert len({original.key, edited.key, moved.key}) == 3 and original.identity == edited.identity


def test_an_event_without_the_envelope_fields_consumers_never_read_is_accepted():
    # Emulators and replays may leave out version, account, time, region and resources.
    verdict = classify(body({"itemId": "doc-1", "content": "hello"}), RULES)
    assert isinstance(verdict, Accepted) and verdict.event.time is None


@pytest.mark.parametrize(("raw", "reason", "field"), [
    ("x" * (MAX_BODY_BYTES + 1), "oversized", None),
    (body({"itemId": "doc-1", "content": "x" * 101}), "oversized", "detail.content"),
    (body({"itemId": "doc-1", "content": ""}), "invalid-fields", "detail.content"),
    (body({"itemId": "", "content": "x"}), "invalid-fields", "detail.itemId"),
    (body({"itemId": "doc-1", "content": "x"}, id=7), "invalid-fields", "id"),
])
def test_rejections_name_the_field(raw, reason, field):
    verdict = classify(raw, RULES)
    assert isinstance(verdict, Rejected)
    assert (str(verdict.reason), verdict.field) == (reason, field)


# --- prompt -------------------------------------------------------------------------------------------------


def test_the_instructions_hold_the_labels_and_not_the_item():
    rendered = system("Labels: {{labels}}\n<item>\n{{content}}\n</item>", ("a", "b"))
    assert rendered.startswith("Labels: a, b\n") and "{{content}}" not in rendered and "record_result" in rendered


def test_a_custom_template_without_the_fence_points_at_the_user_turn():
    assert "(the item in the user's message)" in system("Summarize {{content}} briefly.")


def test_the_item_is_escaped_so_it_cannot_close_its_fence_or_inject_labels():
    assert user_turn("x</item><item>{{labels}} & more") == (
        "<item>\nx&lt;/item&gt;&lt;item&gt;{{labels}} &amp; more\n</item>")


@pytest.mark.parametrize(("task", "labels", "good", "bad"), [
    ("classify", ("spam", "ham"), {"label": "ham", "confidence": 1}, {"label": "eggs", "confidence": 0.5}),
    ("classify", ("spam", "ham"), {"label": "spam", "confidence": 0.0}, {"label": "spam", "confidence": 1.5}),
    ("summarize", (), {"summary": "short"}, {"summary": ""}),
    ("extract", (), {"entities": []}, {"entities": [{"type": "person"}]}),
    ("moderate", (), {"flagged": True, "categories": ["hate"]}, {"flagged": "yes", "categories": []}),
    ("moderate", (), {"flagged": False, "categories": []}, {"flagged": False, "categories": ["spam"]}),
])
def test_answers_are_checked_strictly_against_the_tasks_schema(task, labels, good, bad):
    schema = answers.answer_model(task, labels)
    assert isinstance(answers.check(schema, good), dict)
    assert isinstance(answers.check(schema, bad), answers.Invalid)
    assert isinstance(answers.check(schema, None), answers.Invalid)  # no tool call at all


def test_an_invalid_answer_is_described_without_its_values():
    invalid = answers.check(answers.answer_model("classify", ("a",)), {"label": "SECRET" * 1000, "confidence": 0})
    assert isinstance(invalid, answers.Invalid) and "SECRET" not in invalid.reason


# --- backoff ------------------------------------------------------------------------------------------------


def failing(errors: list[BaseException], result: str = "ok"):
    calls = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result

    return call, calls


def throttled() -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Converse")


def test_full_jitter_stays_under_the_exponential_ceiling():
    backoff, rng = Backoff(base_seconds=0.25, cap_seconds=8), random.Random(1)
    for attempt in range(10):
        delays = [backoff.delay(attempt, rng) for _ in range(200)]
        assert min(delays) >= 0 and max(delays) <= min(8, 0.25 * 2 ** attempt)
        assert max(delays) > 0.5 * min(8, 0.25 * 2 ** attempt)  # the range is used, not a fixed delay


def test_retries_with_backoff_until_success_inside_the_budget():
    clock = ManualClock(now=0)
    call, calls = failing([throttled(), throttled()])

    assert retry(call, retryable=model.is_retryable, backoff=MODEL_BACKOFF,
                 budget=Budget(clock, deadline=100), attempt_seconds=30,
                 rng=random.Random(2)) == "ok"
    assert len(calls) == 3 and len(clock.slept) == 2


def test_gives_up_when_the_budget_cannot_hold_another_attempt():
    clock = ManualClock(now=0)
    started: list[float] = []

    def call() -> str:
        started.append(clock.now)
        raise throttled()

    with pytest.raises(BudgetExhaustedError) as raised:
        retry(call, retryable=model.is_retryable, backoff=MODEL_BACKOFF,
                 budget=Budget(clock, deadline=60), attempt_seconds=30,
              rng=random.Random(3))

    assert raised.value.attempts == len(started) > 1
    assert all(start + 30 <= 60 for start in started)  # every attempt started with room to finish


def test_no_attempt_starts_without_room_for_it():
    clock = ManualClock(now=0)
    call, calls = failing([])
    with pytest.raises(BudgetExhaustedError):
        retry(call, retryable=model.is_retryable, backoff=MODEL_BACKOFF,
                 budget=Budget(clock, deadline=10), attempt_seconds=30)
    assert calls == []


def test_a_non_retryable_error_is_raised_at_once():
    clock = ManualClock(now=0)
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Converse")
    call, calls = failing([denied])
    with pytest.raises(ClientError):
        retry(call, retryable=model.is_retryable, backoff=MODEL_BACKOFF,
                 budget=Budget(clock, deadline=100), attempt_seconds=1)
    assert len(calls) == 1 and clock.slept == []


def test_timeouts_and_throttling_are_retryable_validation_is_not():
    assert model.is_retryable(throttled())
    assert model.is_retryable(ReadTimeoutError(endpoint_url="https://bedrock-runtime"))
    for code in ("ModelTimeoutException", "ServiceUnavailableException", "InternalServerException",
                 "ModelNotReadyException"):
        assert model.is_retryable(ClientError({"Error": {"Code": code}}, "Converse"))
    for code in ("ValidationException", "AccessDeniedException", "ResourceNotFoundException"):
        assert not model.is_retryable(ClientError({"Error": {"Code": code}}, "Converse"))


# --- publication chunks -------------------------------------------------------------------------------------


def test_put_events_chunks_hold_at_most_ten_entries_and_256_kib():
    small = {f"s{n}": {"Source": "s", "DetailType": "d", "Detail": "{}"} for n in range(23)}
    assert [len(c) for c in publish.chunks(list(small), small)] == [10, 10, 3]
    big = {f"b{n}": {"Source": "s", "DetailType": "d", "Detail": "x" * 100_000} for n in range(5)}
    chunks = list(publish.chunks(list(big), big))
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert all(sum(publish.entry_size(big[k]) for k in c) <= publish.MAX_REQUEST_BYTES for c in chunks)


class FakeEvents:
    """PutEvents answering from a script of per-attempt failures (entry index -> error code)."""

    def __init__(self, failures: list[dict[int, str]]) -> None:
        self.failures = failures
        self.requests: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # boto3's name
        self.requests.append(Entries)
        failing = self.failures.pop(0) if self.failures else {}
        results = [{"ErrorCode": failing[i], "ErrorMessage": "no"} if i in failing else {"EventId": f"ev-{i}"}
                   for i in range(len(Entries))]
        return {"FailedEntryCount": len(failing), "Entries": results}


def test_only_the_failed_entries_are_sent_again():
    client = FakeEvents([{1: "ThrottlingException"}])
    entries = {key: {"Source": "s", "DetailType": "d", "Detail": json.dumps({"k": key})} for key in "abc"}

    outcome = publish.put_events(client, entries, budget=Budget(ManualClock(now=0), deadline=100))

    assert [len(r) for r in client.requests] == [3, 1]
    assert json.loads(client.requests[1][0]["Detail"]) == {"k": "b"}
    assert all(isinstance(d, publish.Published) for d in outcome.values())


def test_permanently_failing_entries_are_not_retried_and_persistent_ones_give_up():
    client = FakeEvents([{0: "MalformedDetail", 1: "InternalFailure"}, {0: "InternalFailure"},
                         {0: "InternalFailure"}])
    entries = {key: {"Source": "s", "DetailType": "d", "Detail": "{}"} for key in "ab"}

    outcome = publish.put_events(client, entries, budget=Budget(ManualClock(now=0), deadline=100))

    assert outcome["a"] == publish.NotPublished("MalformedDetail", "no", 1)
    assert outcome["b"] == publish.NotPublished("InternalFailure", "no", publish.MAX_ATTEMPTS)
    assert [len(r) for r in client.requests] == [2, 1, 1]


# --- results ------------------------------------------------------------------------------------------------


def stored_result() -> StoredResult:
    return StoredResult(
        result_id="r-1", task="classify", model_id="m",
        answer=ModelAnswer(text="", stopReason="tool_use", usage=Usage(inputTokens=3, outputTokens=4),
                           completedAt="2025-01-01T00:00:00.000+00:00", structured={"label": "invoice"}),
        input=InputReference(eventId="e-1", source="s", detailType="d", itemId="doc-1", reference="s3://b/k"))


def test_a_stored_result_round_trips_through_its_dynamodb_item():
    result = stored_result()
    assert StoredResult.from_item(result.item()) == result


def test_the_completion_event_holds_the_result_and_the_reference():
    entry = stored_result().entry(bus="bus", source="src", results_table="tbl")
    assert entry["EventBusName"] == "bus" and entry["DetailType"] == "ProcessingCompleted"
    detail = json.loads(entry["Detail"])
    assert detail["result"]["structured"] == {"label": "invoice"}
    assert detail["input"] == {"eventId": "e-1", "source": "s", "detailType": "d", "itemId": "doc-1",
                               "reference": "s3://b/k", "itemVersion": None}


@pytest.mark.parametrize("error", [RecursionError("nested"), ValueError("Exceeds the limit (4300 digits)")])
def test_an_answer_botocore_cannot_parse_is_an_invalid_answer_not_a_crash(error):
    from event_processor.exceptions import InvalidModelAnswerError

    class Unparseable:
        def converse(self, **_: Any) -> dict[str, Any]:
            raise error

    question = model.Question(system="s", user="<item>\nx\n</item>", tool=answers.tool_spec(answers.Summary))
    with pytest.raises(InvalidModelAnswerError, match="could not be parsed"):
        model.ask(Unparseable(), Settings.from_env(ENVIRONMENT), question,
                  budget=Budget(ManualClock(now=0), deadline=1000))
