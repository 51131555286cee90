"""Bedrock's side of ``StartIngestionJob`` for one knowledge base, answered through botocore's ``Stubber``.

moto does not emulate ingestion jobs. The ``Stubber`` checks every request against the real ``bedrock-agent``
service model (botocore validates the parameters before the stub answers) and every canned response against the
real output shape; this class only decides, per request, which answer Bedrock would give:

* a ``clientToken`` it has already accepted returns the job that token started and starts nothing (the API's
  documented idempotency: "If this token matches a previous request, Amazon Bedrock ignores the request, but
  does not return an error"); a request that failed leaves its token unused, so a retry may start the job;
* while a job is running on the data source, a new token gets ``ConflictException`` (HTTP 409);
* a deleted knowledge base gets ``ResourceNotFoundException``; scripted errors (throttling, access denied)
  are answered in order before anything else.
"""

from __future__ import annotations

import itertools
from collections import deque
from datetime import UTC, datetime
from typing import Any

from botocore.stub import Stubber

_EVENT = "provide-client-params.bedrock-agent.StartIngestionJob"


class FakeKnowledgeBase:
    def __init__(self, client: Any, knowledge_base_id: str, data_source_id: str) -> None:
        self.client = client
        self.knowledge_base_id = knowledge_base_id
        self.data_source_id = data_source_id
        self.stubber = Stubber(client)
        self.requests: list[dict[str, Any]] = []
        self.jobs: list[dict[str, Any]] = []  # every job started, in order
        self.running: dict[str, Any] | None = None
        self.exists = True
        self._by_token: dict[str, dict[str, Any]] = {}
        self._scripted: deque[tuple[str, int, str]] = deque()
        self._ids = (f"JOB{n:07d}" for n in itertools.count(1))

    def __enter__(self) -> FakeKnowledgeBase:
        # Registered before the Stubber activates, so the answer is queued before the Stubber checks for one.
        self.client.meta.events.register(_EVENT, self._answer)
        self.stubber.activate()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stubber.deactivate()
        self.client.meta.events.unregister(_EVENT, self._answer)

    # --- scenario controls ------------------------------------------------------------------------------------

    def start_elsewhere(self) -> dict[str, Any]:
        """A job started outside the pipeline (console, another caller) is now running."""
        self.running = self._new_job(description="started outside the pipeline")
        return self.running

    def finish_running_job(self) -> None:
        assert self.running is not None, "no job is running"
        self.running["status"] = "COMPLETE"
        self.running = None

    def fail_next(self, code: str, http_status: int, message: str) -> None:
        self._scripted.append((code, http_status, message))

    @property
    def tokens(self) -> list[str]:
        return [request["clientToken"] for request in self.requests]

    # --- Bedrock's decision -----------------------------------------------------------------------------------

    def _answer(self, params: dict[str, Any], **_: Any) -> None:
        request = dict(params)
        self.requests.append(request)
        if self._scripted:
            code, status, message = self._scripted.popleft()
            self._error(request, code, status, message)
        elif not self.exists or request["knowledgeBaseId"] != self.knowledge_base_id:
            self._error(
                request, "ResourceNotFoundException", 404, f"Knowledge base {request['knowledgeBaseId']} not found"
            )
        elif request.get("clientToken") in self._by_token:
            self._respond(request, self._by_token[request["clientToken"]])
        elif self.running is not None:
            self._error(
                request, "ConflictException", 409, "An ingestion job is already in progress for this data source"
            )
        else:
            job = self._new_job(description=request.get("description"))
            self._by_token[request["clientToken"]] = job
            self.running = job
            self._respond(request, job)

    def _new_job(self, description: str | None) -> dict[str, Any]:
        now = datetime.now(UTC)
        job = {
            "knowledgeBaseId": self.knowledge_base_id,
            "dataSourceId": self.data_source_id,
            "ingestionJobId": next(self._ids),
            "status": "STARTING",
            "statistics": {"numberOfDocumentsScanned": 0, "numberOfNewDocumentsIndexed": 0},
            "startedAt": now,
            "updatedAt": now,
        }
        if description:
            job["description"] = description
        self.jobs.append(job)
        return job

    def _respond(self, request: dict[str, Any], job: dict[str, Any]) -> None:
        self.stubber.add_response("start_ingestion_job", {"ingestionJob": dict(job)}, expected_params=request)

    def _error(self, request: dict[str, Any], code: str, status: int, message: str) -> None:
        self.stubber.add_client_error(
            "start_ingestion_job",
            service_error_code=code,
            service_message=message,
            http_status_code=status,
            expected_params=request,
        )
