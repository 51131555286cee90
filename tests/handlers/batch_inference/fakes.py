"""Bedrock (control plane and runtime) and Step Functions behind botocore Stubbers, with the real request and
response shapes of botocore's service models; and Bedrock's side of a batch job: the output files it writes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.stub import ANY, Stubber

from components.pipelines.batch_inference import JOB_OWNER_TAG

JOB_RUN_TAG = "ai-pipelines:run-id"

ACCOUNT = "123456789012"
REGION = "us-east-1"
NOW = dt.datetime(2026, 6, 27, 3, 0, tzinfo=dt.UTC)


def job_arn(job_id: str) -> str:
    return f"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-invocation-job/{job_id}"


class FakeBedrock:
    """The `bedrock` client's answers, queued in call order."""

    def __init__(self, client: Any, *, model_id: str, role_arn: str, job_prefix: str,
                 stack_tags: dict[str, str] | None = None) -> None:
        self.client, self.model_id, self.role_arn, self.job_prefix = client, model_id, role_arn, job_prefix
        self.stack_tags = stack_tags or {}
        self.stubber = Stubber(client)

    def __enter__(self) -> FakeBedrock:
        self.stubber.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stubber.deactivate()

    def creates(self, *, name: str, token: str, arn: str, input_uri: str | Any = ANY,
                output_uri: str | Any = ANY, invocation_type: str = "Converse", run_id: str | Any = ANY,
                output_key: str | None = None, vpc: dict[str, list[str]] | None = None) -> None:
        """Bedrock creates the job; the request must tag it as the pipeline's (the tag the stop grant requires), with
        its run and the stack's tags, name the records' format (Converse unless the stack asks for native bodies),
        and carry the output key and the VPC exactly when the stack configures them."""
        output: dict[str, Any] = {"s3Uri": output_uri}
        if output_key is not None:
            output["s3EncryptionKeyId"] = output_key
        request = {
            "jobName": name, "roleArn": self.role_arn, "modelId": self.model_id, "clientRequestToken": token,
            "inputDataConfig": {"s3InputDataConfig": {"s3Uri": input_uri, "s3InputFormat": "JSONL"}},
            "outputDataConfig": {"s3OutputDataConfig": output}, "timeoutDurationInHours": ANY,
            "tags": [{"key": JOB_OWNER_TAG, "value": self.job_prefix}, {"key": JOB_RUN_TAG, "value": run_id},
                     *({"key": key, "value": value} for key, value in sorted(self.stack_tags.items()))],
            "modelInvocationType": invocation_type}
        if vpc is not None:
            request["vpcConfig"] = vpc
        self.stubber.add_response("create_model_invocation_job", {"jobArn": arn}, request)

    def refuses_create(self, code: str, message: str = "refused") -> None:
        self.stubber.add_client_error("create_model_invocation_job", service_error_code=code,
                                      service_message=message, http_status_code=400 if code != "ThrottlingException"
                                      else 429)

    def stops(self, arn: str) -> None:
        self.stubber.add_response("stop_model_invocation_job", {}, {"jobIdentifier": arn})

    def describes(self, *, arn: str, name: str, status: str, input_uri: str, output_uri: str,
                  message: str = "") -> None:
        response = _job(arn, name, status, input_uri, output_uri, self.model_id, self.role_arn)
        if message:
            response["message"] = message
        self.stubber.add_response("get_model_invocation_job", response, {"jobIdentifier": arn})

    def lists(self, jobs: Sequence[dict[str, Any]], expected: dict[str, Any] | None = None) -> None:
        self.stubber.add_response("list_model_invocation_jobs", {"invocationJobSummaries": list(jobs)},
                                  expected if expected is not None else {
                                      "nameContains": ANY, "submitTimeAfter": ANY, "sortBy": "CreationTime",
                                      "sortOrder": "Descending"})

    def summary(self, *, arn: str, name: str, status: str, input_uri: str, output_uri: str) -> dict[str, Any]:
        return _job(arn, name, status, input_uri, output_uri, self.model_id, self.role_arn)


def _job(arn: str, name: str, status: str, input_uri: str, output_uri: str, model_id: str,
         role_arn: str) -> dict[str, Any]:
    return {"jobArn": arn, "jobName": name, "modelId": model_id, "roleArn": role_arn, "status": status,
            "submitTime": NOW, "lastModifiedTime": NOW,
            "inputDataConfig": {"s3InputDataConfig": {"s3Uri": input_uri, "s3InputFormat": "JSONL"}},
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": output_uri}}, "timeoutDurationInHours": 24}


class FakeStepFunctions:
    """The callbacks the handlers send, checked against the expected token and output."""

    def __init__(self, client: Any) -> None:
        self.stubber = Stubber(client)

    def __enter__(self) -> FakeStepFunctions:
        self.stubber.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stubber.deactivate()

    def expects_success(self, token: str, output: Any = ANY) -> None:
        self.stubber.add_response("send_task_success", {}, {"taskToken": token, "output": output})

    def expects_failure(self, token: str, error: str = ANY) -> None:
        self.stubber.add_response("send_task_failure", {}, {"taskToken": token, "error": error, "cause": ANY})

    def expects_heartbeat(self, token: str) -> None:
        self.stubber.add_response("send_task_heartbeat", {}, {"taskToken": token})

    def lists_ended_runs(self, machine: str, status: str | None = None,
                         executions: Sequence[dict[str, Any]] = (), *, page: str | None = None,
                         next_page: str | None = None) -> None:
        """ListExecutions of one unsuccessful status (FAILED, TIMED_OUT or ABORTED, as the reconciler asks in that
        order), or of all three with none to list; `page` is the nextToken asked with, `next_page` the one given."""
        for listed in ((status,) if status else ("FAILED", "TIMED_OUT", "ABORTED")):
            response: dict[str, Any] = {"executions": list(executions)}
            if next_page:
                response["nextToken"] = next_page
            expected = {"stateMachineArn": machine, "statusFilter": listed, **({"nextToken": page} if page else {})}
            self.stubber.add_response("list_executions", response, expected)

    def describes_execution(self, execution_arn: str, **fields: Any) -> None:
        self.stubber.add_response("describe_execution", {
            "executionArn": execution_arn, "stateMachineArn": execution_arn.rsplit(":", 1)[0].replace(
                ":execution:", ":stateMachine:"), "status": "FAILED", "startDate": datetime(2026, 6, 27, 3, tzinfo=UTC),
            **fields}, {"executionArn": execution_arn})

    def token_gone(self, operation: str = "send_task_success") -> None:
        self.stubber.add_client_error(operation, service_error_code="TaskTimedOut",
                                      service_message="Task Timed Out", http_status_code=400)


class FakeConverse:
    """`bedrock-runtime` Converse answers in call order (tests run one record at a time when order matters)."""

    def __init__(self, client: Any, model_id: str) -> None:
        self.model_id = model_id
        self.stubber = Stubber(client)

    def __enter__(self) -> FakeConverse:
        self.stubber.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stubber.deactivate()

    def answers(self, text: str, times: int = 1) -> None:
        for _ in range(times):
            self.stubber.add_response("converse", {
                "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
                "stopReason": "end_turn", "usage": {"inputTokens": 12, "outputTokens": 5, "totalTokens": 17},
                "metrics": {"latencyMs": 120}}, {"modelId": self.model_id, "messages": ANY, "inferenceConfig": ANY})

    def fails(self, code: str, times: int = 1) -> None:
        status = {"ThrottlingException": 429, "ModelTimeoutException": 408, "ServiceUnavailableException": 503,
                  "AccessDeniedException": 403}.get(code, 400)
        for _ in range(times):
            self.stubber.add_client_error("converse", service_error_code=code, service_message=f"{code} (test)",
                                          http_status_code=status)


# --- Bedrock's side of a job: the files a finished job leaves in the output location -----------------------


def output_line(record_id: str, text: str) -> dict[str, Any]:
    """A success line of a Converse job: its modelOutput is Converse's response body."""
    return {"recordId": record_id, "modelInput": {"messages": []}, "modelOutput": {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}}, "stopReason": "end_turn",
        "usage": {"inputTokens": 20, "outputTokens": 7, "totalTokens": 27}, "metrics": {"latencyMs": 900}}}


def native_output_line(record_id: str, text: str) -> dict[str, Any]:
    """A success line of an InvokeModel job running Claude: its modelOutput is Anthropic's Messages body."""
    return {"recordId": record_id, "modelInput": {"messages": []}, "modelOutput": {
        "id": f"msg_{record_id}", "type": "message", "role": "assistant", "model": "claude-3-haiku-20240307",
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 20, "output_tokens": 7}}}


def error_line(record_id: str, code: int = 400, message: str = "Malformed input request") -> dict[str, Any]:
    return {"recordId": record_id, "modelInput": {"messages": []},
            "error": {"errorCode": code, "errorMessage": message}}


def write_job_output(s3: Any, output_uri: str, job_id: str, shard_key: str, lines: Iterable[dict[str, Any]],
                     *, total: int, manifest: bool = True) -> None:
    """What Bedrock writes for a finished job: `<output>/<jobId>/<input file>.out` and `manifest.json.out`."""
    bucket, _, prefix = output_uri.removeprefix("s3://").partition("/")
    rows = list(lines)
    folder = f"{prefix}{job_id}/"
    s3.put_object(Bucket=bucket, Key=f"{folder}{shard_key.rsplit('/', 1)[-1]}.out",
                  Body="".join(json.dumps(row) + "\n" for row in rows).encode())
    if manifest:
        errors = sum(1 for row in rows if "error" in row)
        s3.put_object(Bucket=bucket, Key=f"{folder}manifest.json.out", Body=json.dumps({
            "totalRecordCount": total, "processedRecordCount": len(rows), "successRecordCount": len(rows) - errors,
            "errorRecordCount": errors, "inputTokenCount": 20 * len(rows), "outputTokenCount": 7 * len(rows)}))


def job_state_change(arn: str, name: str, status: str, model_id: str) -> dict[str, Any]:
    """Bedrock's EventBridge event for a batch job that changed state (as the default bus delivers it)."""
    return {"version": "0", "id": "3f9a1c2e-0000-4000-8000-000000000001",
            "detail-type": "Batch Inference Job State Change", "source": "aws.bedrock", "account": ACCOUNT,
            "time": "2026-06-27T03:00:00Z", "region": REGION, "resources": [arn],
            "detail": {"version": "0.0", "accountId": ACCOUNT, "batchJobName": name, "batchJobArn": arn,
                       "batchModelId": model_id, "status": status, "failureMessage": "",
                       "processedRecordCount": 0, "successRecordCount": 0, "errorRecordCount": 0}}
