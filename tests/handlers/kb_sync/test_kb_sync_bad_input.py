"""The bad-input catalogue: every kind of unusable or unusual message gets a defined outcome and a structured
log entry, and none of them stops the valid message delivered in the same batch from starting the job.

Bodies are built here rather than sent through SQS because some (invalid UTF-8, a non-string body) cannot
travel through a real queue yet must still not crash the function if they ever arrive.
"""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from tests.handlers.kb_sync.names import ACCOUNT, BUCKET, PREFIX, QUEUE, REGION

# The job path: every change through StartIngestionJob (direct ingestion has its own tests).
pytestmark = pytest.mark.usefixtures("jobs_mode")

QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}"


def s3_event(event_name: str, raw_key: str, *, bucket: str = BUCKET, **object_fields) -> str:
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2025-01-01T00:00:00.000Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "192.0.2.1"},
        "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "kb-sync",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": raw_key, "size": 1024, "eTag": "d41d8cd98f00b204e9800998ecf8427e", **object_fields},
        },
    }
    return json.dumps({"Records": [record]})


def record(body: object) -> dict:
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "receipt",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1700000000000",
            "SenderId": "EXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1700000000000",
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": REGION,
    }


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


VALID = s3_event("ObjectCreated:Put", f"{PREFIX}valid.pdf")
OVERSIZED = s3_event("ObjectCreated:Put", f"{PREFIX}big.pdf", padding="x" * 70_000)

REJECTED = {
    "malformed JSON": ('{"Records": [', "malformed-json"),
    "JSON nested beyond reason": ("[" * 5000 + "]" * 5000, "malformed-json"),
    "invalid UTF-8": ("\udcff\udcfe not text", "invalid-utf-8"),
    "empty body": ("", "empty-body"),
    "blank body": ("   \n", "empty-body"),
    "not a string": (None, "body-not-text"),
    "oversized payload": (OVERSIZED, "oversized"),
    "wrong event type: EventBridge": (
        json.dumps({"version": "0", "source": "aws.s3", "detail-type": "Object Created", "detail": {}}),
        "unrecognised-message",
    ),
    "wrong event type: SNS envelope": (
        json.dumps({"Type": "Notification", "Message": VALID}),
        "unrecognised-message",
    ),
    "wrong event type: JSON array": ("[1, 2, 3]", "unrecognised-message"),
    "wrong field type: key is a number": (s3_event("ObjectCreated:Put", 42), "invalid-fields"),
    "wrong field type: size is a string": (s3_event("ObjectCreated:Put", f"{PREFIX}a", size="12"), "invalid-fields"),
    "wrong field type: Records is an object": (json.dumps({"Records": {}}), "invalid-fields"),
    "no records": (json.dumps({"Records": []}), "invalid-fields"),
    "follow-up with a string generation": (
        json.dumps({"source": "follow-up", "generation": "2", "origin": "a" * 64}),
        "invalid-fields",
    ),
    "follow-up with a forged origin": (
        json.dumps({"source": "follow-up", "generation": 1, "origin": "../../etc"}),
        "invalid-fields",
    ),
}


@pytest.mark.parametrize(("body", "reason"), list(REJECTED.values()), ids=list(REJECTED))
def test_an_unusable_message_fails_alone_with_a_structured_log(pipeline, bedrock, invoke, logs, body, reason):
    bad, good = record(body), record(VALID)

    answer = invoke({"Records": [bad, good]})

    assert answer == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    assert len(bedrock.jobs) == 1  # the valid message still starts the job
    (entry,) = logs.named("Rejected message")
    assert entry["level"] == "ERROR"
    assert entry["messageId"] == bad["messageId"] and entry["reason"] == reason and entry["detail"]
    assert "bodyPreview" not in entry and len(json.dumps(entry)) < 2000  # bounded, and no content
    assert logs.named("Batch settled")[0]["outcomes"] == {"covered-by-job": 1, "rejected": 1}


def test_a_batch_of_nothing_but_unusable_messages_is_answered_not_raised(pipeline, bedrock, invoke):
    bad = [record(body) for body, _ in REJECTED.values()]

    answer = invoke({"Records": bad})

    assert sorted(f["itemIdentifier"] for f in answer["batchItemFailures"]) == sorted(r["messageId"] for r in bad)
    assert bedrock.requests == []


KEYS = {
    "spaces": (f"{PREFIX}red+flower.pdf", f"{PREFIX}red flower.pdf"),
    "plus signs": (f"{PREFIX}c%2B%2B+notes.md", f"{PREFIX}c++ notes.md"),
    "non-ASCII": (f"{PREFIX}%C3%A9t%C3%A9/%E6%97%A5%E6%9C%AC.txt", f"{PREFIX}été/日本.txt"),
    "encoded slashes": (f"{PREFIX.rstrip('/')}%2Fsub%2Fa.txt", f"{PREFIX}sub/a.txt"),
    "percent sign": (f"{PREFIX}100%25.txt", f"{PREFIX}100%.txt"),
}


@pytest.mark.parametrize(("raw", "decoded"), list(KEYS.values()), ids=list(KEYS))
def test_keys_are_logged_as_the_digest_of_the_decoded_key(pipeline, bedrock, invoke, logs, raw, decoded):
    answer = invoke({"Records": [record(s3_event("ObjectCreated:Put", raw))]})

    assert answer == {"batchItemFailures": []} and len(bedrock.jobs) == 1
    (entry,) = logs.named("Documents changed")
    assert entry["changes"] == [{"kind": "created", "keySha256": key_digest(decoded)}]


def test_a_key_with_broken_escapes_still_counts_as_a_change(pipeline, bedrock, invoke, logs):
    answer = invoke({"Records": [record(s3_event("ObjectRemoved:Delete", f"{PREFIX}bad%FF%FE.txt"))]})

    assert answer == {"batchItemFailures": []} and len(bedrock.jobs) == 1
    (entry,) = logs.named("Documents changed")
    (change,) = entry["changes"]
    assert change == {"kind": "removed", "keySha256": key_digest(f"{PREFIX}bad%FF%FE.txt"), "keyNotDecoded": True}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "t", "Bucket": BUCKET}), "s3-test-event"),
        (s3_event("ObjectTagging:Put", f"{PREFIX}a.pdf"), "not-a-content-change"),
        (s3_event("ObjectRestore:Completed", f"{PREFIX}a.pdf"), "not-a-content-change"),
    ],
    ids=["S3 test event", "tagging", "restore"],
)
def test_messages_that_change_no_document_are_skipped(pipeline, bedrock, invoke, logs, body, reason):
    message = record(body)

    answer = invoke({"Records": [message]})

    assert answer == {"batchItemFailures": []} and bedrock.requests == []
    (entry,) = logs.named("Skipped message")
    assert entry["messageId"] == message["messageId"] and entry["reason"] == reason


@pytest.mark.parametrize(
    "event_name", ["ObjectRemoved:Delete", "ObjectRemoved:DeleteMarkerCreated", "LifecycleExpiration:Delete"]
)
def test_removal_events_start_a_job(pipeline, bedrock, invoke, logs, event_name):
    answer = invoke({"Records": [record(s3_event(event_name, f"{PREFIX}old.pdf"))]})

    assert answer == {"batchItemFailures": []} and len(bedrock.jobs) == 1
    assert logs.named("Documents changed")[0]["counts"] == {"removed": 1}


def test_a_schedule_request_redriven_from_the_dlq_is_a_sync_request(pipeline, bedrock, invoke):
    answer = invoke({"Records": [record(json.dumps({"source": "schedule"}))]})

    assert answer == {"batchItemFailures": []} and len(bedrock.jobs) == 1


def test_an_empty_batch_does_nothing(pipeline, bedrock, invoke):
    assert invoke({"Records": []}) == {"batchItemFailures": []}
    assert bedrock.requests == []


def test_logs_name_documents_and_bodies_by_digest_never_by_content(pipeline, bedrock, invoke, logs):
    key = f"{PREFIX}salaries/alice-smith-SECRET.pdf"
    changed = record(s3_event("ObjectCreated:Put", key))
    unusable = record('{"Records": [{"s3": "SECRET body ' + "x" * 5000)
    test_event = record(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "B" * 50_000}))

    invoke({"Records": [changed, unusable, test_event]})

    written = json.dumps(logs.entries)
    assert "SECRET" not in written and "B" * 1000 not in written
    (entry,) = logs.named("Documents changed")
    (change,) = entry["changes"]
    assert change["keySha256"] == hashlib.sha256(key.encode()).hexdigest()[:16]
    (rejected,) = logs.named("Rejected message")
    assert rejected["bodySha256"] == hashlib.sha256(unusable["body"].encode()).hexdigest()
    assert all(len(json.dumps(e)) < 4000 for e in logs.entries)


FORGED = {
    "another bucket": (s3_event("ObjectCreated:Put", f"{PREFIX}a.pdf", bucket="someone-elses-bucket"),
                       "foreign-bucket"),
    "a key outside the document prefix": (s3_event("ObjectRemoved:Delete", "elsewhere/a.pdf"), "outside-prefix"),
    "an undecodable key outside the prefix": (s3_event("ObjectCreated:Put", "x%FF/a.pdf"), "outside-prefix"),
}


@pytest.mark.parametrize(("body", "reason"), list(FORGED.values()), ids=list(FORGED))
def test_a_notification_of_another_bucket_or_prefix_starts_no_job(pipeline, bedrock, invoke, logs, body, reason):
    forged = record(body)

    answer = invoke({"Records": [forged]})

    assert answer == {"batchItemFailures": [{"itemIdentifier": forged["messageId"]}]}
    assert bedrock.requests == []  # a forged notification alone starts nothing
    (entry,) = logs.named("Rejected message")
    assert entry["reason"] == reason


def test_a_forged_record_fails_alone_beside_a_real_change(pipeline, bedrock, invoke):
    forged, real = record(FORGED["another bucket"][0]), record(VALID)

    answer = invoke({"Records": [forged, real]})

    assert answer == {"batchItemFailures": [{"itemIdentifier": forged["messageId"]}]}
    assert len(bedrock.jobs) == 1
