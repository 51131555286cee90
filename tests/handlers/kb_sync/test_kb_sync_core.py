"""The pure core: configuration, key decoding, client tokens, planning, conflicts and the per-message outcome."""

from __future__ import annotations

import re

import botocore.session
import pytest
from pydantic import TypeAdapter

from common import ConfigurationError, decode_event_key
from kb_sync.classify import (
    Changed,
    ChangeKind,
    ObjectChange,
    Rejected,
    RejectReason,
    Skipped,
    SkipReason,
    SyncRequested,
)
from kb_sync.config import Settings
from kb_sync.messages import QueueMessage, ScheduledSync
from kb_sync.planning import QueuedMessage, client_token, plan_batch, plan_scheduled_run, resolve_conflict
from kb_sync.sync import JobConflict, JobStarted, Outcome, run_sync, settle
from tests.handlers.kb_sync.names import DATA_SOURCE_ID, ENVIRONMENT, FUNCTION, KNOWLEDGE_BASE_ID
from tests.support.stacks import SHIPPED_STACKS, function_environment

CHANGE = Changed((ObjectChange(ChangeKind.CREATED, "bucket", "docs/a.pdf"),))
REMOVAL = Changed((ObjectChange(ChangeKind.REMOVED, "bucket", "docs/b.pdf"),))
TEST_EVENT = Skipped(SkipReason.S3_TEST_EVENT, "test event")
ORIGIN = "f" * 64


def plan(*verdicts):
    return plan_batch(
        [QueuedMessage(f"m{n}", verdict) for n, verdict in enumerate(verdicts)], KNOWLEDGE_BASE_ID, DATA_SOURCE_ID
    )


# --- configuration ---------------------------------------------------------------------------------------------


def test_settings_from_the_infrastructure_environment():
    settings = Settings.from_env(ENVIRONMENT)

    assert (settings.knowledge_base_id, settings.data_source_id) == (KNOWLEDGE_BASE_ID, DATA_SOURCE_ID)
    assert (settings.follow_up_delay_seconds, settings.max_follow_ups) == (300, 6)


def test_optional_settings_have_defaults():
    required = {k: ENVIRONMENT[k] for k in ("KNOWLEDGE_BASE_ID", "DATA_SOURCE_ID", "FOLLOW_UP_QUEUE_URL",
                                            "DOCUMENT_BUCKET", "DOCUMENT_PREFIX")}

    settings = Settings.from_env(required)

    assert (settings.follow_up_delay_seconds, settings.max_follow_ups) == (300, 6)


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("KNOWLEDGE_BASE_ID", None, "is not set"),
        ("KNOWLEDGE_BASE_ID", "kb-123", "is not a knowledge base id"),
        ("DATA_SOURCE_ID", "", "is not set"),
        ("FOLLOW_UP_QUEUE_URL", "arn:aws:sqs:us-east-1:123456789012:q", "is not the URL"),
        ("FOLLOW_UP_DELAY_SECONDS", "901", "outside [0, 900]"),
        ("FOLLOW_UP_DELAY_SECONDS", "5m", "is not an integer"),
        ("MAX_FOLLOW_UPS", "-1", "outside [0, 100]"),
        ("DOCUMENT_BUCKET", None, "is not set"),
        ("DOCUMENT_BUCKET", "Not_A_Bucket", "is not an S3 bucket name"),
        ("DOCUMENT_PREFIX", "documents", "is not a key prefix"),
    ],
)
def test_a_bad_variable_is_named_in_the_error(name, value, complaint):
    env = {k: v for k, v in ENVIRONMENT.items() if k != name}
    if value is not None:
        env[name] = value

    with pytest.raises(ConfigurationError, match=rf"^environment variable {name}\b.*{re.escape(complaint)}"):
        Settings.from_env(env)


# --- keys ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [("a+b", "a b"), ("a%2Bb", "a+b"), ("%C3%A9", "é"), ("plain/key.txt", "plain/key.txt"), ("%25", "%")],
)
def test_event_keys_decode_like_a_form(raw, key):
    assert decode_event_key(raw) == key


def test_an_event_key_that_is_not_utf8_is_refused():
    with pytest.raises(UnicodeDecodeError):
        decode_event_key("bad%FF")


# --- client token ----------------------------------------------------------------------------------------------


def _client_token_shape():
    model = botocore.session.get_session().get_service_model("bedrock-agent")
    return model.operation_model("StartIngestionJob").input_shape.members["clientToken"]


def test_the_client_token_fits_bedrocks_shape():
    shape = _client_token_shape()
    token = client_token(KNOWLEDGE_BASE_ID, DATA_SOURCE_ID, ["message:1", "message:2"])

    assert shape.metadata["min"] <= len(token) <= shape.metadata["max"]
    assert re.fullmatch(shape.metadata["pattern"], token)


def test_the_client_token_depends_on_the_set_of_messages_only():
    token = client_token(KNOWLEDGE_BASE_ID, DATA_SOURCE_ID, ["a", "b"])

    assert client_token(KNOWLEDGE_BASE_ID, DATA_SOURCE_ID, ["b", "a", "b"]) == token
    assert client_token(KNOWLEDGE_BASE_ID, DATA_SOURCE_ID, ["a"]) != token
    assert client_token("KB00000000", DATA_SOURCE_ID, ["a", "b"]) != token
    assert client_token(KNOWLEDGE_BASE_ID, "DS00000000", ["a", "b"]) != token
    assert client_token(KNOWLEDGE_BASE_ID, DATA_SOURCE_ID, ["ab"]) != client_token(
        KNOWLEDGE_BASE_ID, DATA_SOURCE_ID, ["a", "b"]
    )


# --- planning --------------------------------------------------------------------------------------------------


def test_a_batch_with_nothing_to_sync_has_no_plan():
    assert plan(TEST_EVENT, Rejected(RejectReason.MALFORMED_JSON, "x")) is None
    assert plan() is None


def test_a_plan_covers_changes_removals_and_requests():
    planned = plan(CHANGE, REMOVAL, TEST_EVENT, SyncRequested(generation=2, origin=ORIGIN))

    assert [o.message_id for o in planned.obligations] == ["m0", "m1", "m3"]
    assert [o.generation for o in planned.obligations] == [0, 0, 2]
    assert planned.description == "kb-sync: 1 created, 1 removed, 1 re-requests"


def test_copies_of_a_follow_up_plan_the_same_job():
    follow_up = SyncRequested(generation=1, origin=ORIGIN)
    one = plan_batch([QueuedMessage("copy-1", follow_up)], KNOWLEDGE_BASE_ID, DATA_SOURCE_ID)
    other = plan_batch([QueuedMessage("copy-2", follow_up)], KNOWLEDGE_BASE_ID, DATA_SOURCE_ID)
    both = plan_batch(
        [QueuedMessage("copy-1", follow_up), QueuedMessage("copy-2", follow_up)], KNOWLEDGE_BASE_ID, DATA_SOURCE_ID
    )

    assert one.client_token == other.client_token == both.client_token


def test_a_descriptions_fits_bedrocks_limit():
    long_run = plan_scheduled_run("x" * 64, KNOWLEDGE_BASE_ID, DATA_SOURCE_ID)

    assert 1 <= len(long_run.description) <= 200


# --- conflicts -------------------------------------------------------------------------------------------------


def test_a_conflict_carries_everything_under_the_bound_in_one_follow_up():
    planned = plan(CHANGE, SyncRequested(generation=3, origin=ORIGIN), REMOVAL)

    resolution = resolve_conflict(planned, max_follow_ups=6)

    assert resolution.follow_up.generation == 4 and resolution.follow_up.origin == planned.client_token
    assert len(resolution.carried) == 3 and resolution.exhausted == ()


def test_at_the_bound_only_the_exhausted_request_fails_and_fresh_changes_start_over():
    planned = plan(SyncRequested(generation=6, origin=ORIGIN), CHANGE)

    resolution = resolve_conflict(planned, max_follow_ups=6)

    assert [o.message_id for o in resolution.exhausted] == ["m0"]
    assert [o.message_id for o in resolution.carried] == ["m1"]
    assert resolution.follow_up.generation == 1


def test_with_no_follow_ups_allowed_a_conflict_fails_everything():
    resolution = resolve_conflict(plan(CHANGE, REMOVAL), max_follow_ups=0)

    assert resolution.follow_up is None and len(resolution.exhausted) == 2


# --- outcomes --------------------------------------------------------------------------------------------------

MESSAGES = [
    QueuedMessage("change", CHANGE),
    QueuedMessage("test-event", TEST_EVENT),
    QueuedMessage("old-follow-up", SyncRequested(generation=2, origin=ORIGIN)),
]


def _run(answer, max_follow_ups=6):
    sent = []
    planned = plan_batch(MESSAGES, KNOWLEDGE_BASE_ID, DATA_SOURCE_ID)
    result = run_sync(
        planned,
        start_job=lambda _: answer,
        send_follow_up=lambda follow_up: sent.append(follow_up) or "follow-up-id",
        max_follow_ups=max_follow_ups,
    )
    return result, sent


def test_a_started_job_covers_every_request():
    result, sent = _run(JobStarted("JOB0000001", "STARTING"))

    assert sent == []
    assert settle(MESSAGES, result) == {
        "change": Outcome.COVERED,
        "test-event": Outcome.SKIPPED,
        "old-follow-up": Outcome.COVERED,
    }


def test_a_conflict_sends_exactly_one_follow_up_for_the_batch():
    result, sent = _run(JobConflict("busy"))

    assert len(sent) == 1 and sent[0].generation == 3
    assert set(settle(MESSAGES, result).values()) == {Outcome.FOLLOW_UP, Outcome.SKIPPED}


def test_every_message_ends_in_exactly_one_outcome_at_the_bound():
    result, sent = _run(JobConflict("busy"), max_follow_ups=2)

    assert [follow_up.generation for follow_up in sent] == [1]
    assert settle(MESSAGES, result) == {
        "change": Outcome.FOLLOW_UP,
        "test-event": Outcome.SKIPPED,
        "old-follow-up": Outcome.EXHAUSTED,
    }


def test_a_message_delivered_twice_in_one_batch_keeps_its_failure():
    messages = [QueuedMessage("dup", Rejected(RejectReason.OVERSIZED, "x")), QueuedMessage("dup", TEST_EVENT)]

    assert settle(messages, None) == {"dup": Outcome.REJECTED}


# --- the contract with the infrastructure ------------------------------------------------------------------------


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_the_handler_accepts_the_environment_every_shipped_stack_gives_it(stack):
    environment = function_environment(FUNCTION, stack)

    settings = Settings.from_env(environment)

    assert settings.knowledge_base_id == environment["KNOWLEDGE_BASE_ID"]
    assert settings.follow_up_queue_url == environment["FOLLOW_UP_QUEUE_URL"]


def test_the_schedules_payload_is_a_schedule_request():
    from components.blocks.schedule import SCHEDULED_EVENT

    assert isinstance(TypeAdapter(QueueMessage).validate_python(SCHEDULED_EVENT), ScheduledSync)
