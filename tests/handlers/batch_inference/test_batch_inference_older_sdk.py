"""The submitter under a Lambda runtime whose botocore predates CreateModelInvocationJob's modelInvocationType.

The archives leave boto3 to the runtime, so the field may be unknown to the SDK that sends the request: a client is
given such a model by taking the member out of its own operation's input shape, as an older botocore would have it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from batch_inference import clients, submitter
from batch_inference.exceptions import SubmissionRejectedError
from tests.handlers.batch_inference.conftest import Storage

ARN = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abc"


def _older_sdk_client() -> Any:
    client = clients.bedrock()
    members = client.meta.service_model.operation_model("CreateModelInvocationJob").input_shape.members
    del members["modelInvocationType"]
    assert not submitter.knows_invocation_type(client)
    return client


def test_the_shipped_sdk_knows_the_invocation_type(storage: Storage) -> None:
    assert submitter.knows_invocation_type(clients.bedrock())


def test_native_bodies_are_submitted_without_the_field_an_older_sdk_does_not_know(
        storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(submitter, "settings", replace(submitter.settings, request_format="native"))
    client = _older_sdk_client()
    request = submitter.job_request("job-1", "run-1", "s-1", "s3://in/shard.jsonl")
    expected = {key: (ANY if key in ("tags",) else value) for key, value in request.items()
                if key != "modelInvocationType"}
    with Stubber(client) as stub:
        stub.add_response("create_model_invocation_job", {"jobArn": ARN}, expected)
        assert submitter.submit("job-1", "run-1", "s-1", "s3://in/shard.jsonl") == ARN
        stub.assert_no_pending_responses()


def test_converse_records_under_an_older_sdk_refuse_the_shard_naming_the_version_needed(
        storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(submitter, "settings", replace(submitter.settings, request_format="converse"))
    client = _older_sdk_client()
    with Stubber(client) as stub, pytest.raises(SubmissionRejectedError, match=r"botocore 1\.42\.59 or later"):
        submitter.submit("job-1", "run-1", "s-1", "s3://in/shard.jsonl")
    stub.assert_no_pending_responses()
