"""Bedrock's side of one knowledge base and its S3 data source, answered through botocore's ``Stubber``.

moto does not emulate knowledge bases. The ``Stubber`` checks every request against the real ``bedrock-agent``
service model (botocore validates the parameters before the stub answers) and every canned response against the
real output shape; this class only decides, per request, which answer Bedrock would give.

Ingestion jobs (``StartIngestionJob``, ``GetIngestionJob``, ``ListIngestionJobs``):

* a ``clientToken`` it has already accepted returns the job that token started and starts nothing (the API's
  documented idempotency: "If this token matches a previous request, Amazon Bedrock ignores the request, but
  does not return an error"); a request that failed leaves its token unused, so a retry may start the job;
* while a job is running on the data source, a new token gets ``ConflictException`` (HTTP 409); while the
  account's concurrent-jobs quota is held elsewhere (``hold_account_quota``), ``ServiceQuotaExceededException``
  (HTTP 402, as the service model declares it);
* a deleted knowledge base gets ``ResourceNotFoundException``; scripted errors (throttling, access denied)
  are answered in order before anything else, per operation.

Direct ingestion (``IngestKnowledgeBaseDocuments``, ``DeleteKnowledgeBaseDocuments``,
``GetKnowledgeBaseDocuments``): a submitted document is STARTING (DELETING for a deletion) until
``settle_documents`` ends it as scripted by ``document_fails`` (FAILED) or as it should (INDEXED, or gone: a
document Bedrock does not know is NOT_FOUND). A repeated client token does the work once.
"""

from __future__ import annotations

import itertools
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.stub import Stubber

_OPERATIONS = {
    "StartIngestionJob": "start_ingestion_job",
    "GetIngestionJob": "get_ingestion_job",
    "ListIngestionJobs": "list_ingestion_jobs",
    "IngestKnowledgeBaseDocuments": "ingest_knowledge_base_documents",
    "DeleteKnowledgeBaseDocuments": "delete_knowledge_base_documents",
    "GetKnowledgeBaseDocuments": "get_knowledge_base_documents",
}
_ERROR_STATUS = {"ConflictException": 409, "ServiceQuotaExceededException": 402, "ValidationException": 400,
                 "ThrottlingException": 429, "ResourceNotFoundException": 404, "AccessDeniedException": 403,
                 "InternalServerException": 500}


class FakeKnowledgeBase:
    def __init__(self, client: Any, knowledge_base_id: str, data_source_id: str,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.client = client
        self.knowledge_base_id = knowledge_base_id
        self.data_source_id = data_source_id
        self.stubber = Stubber(client)
        self.requests: list[dict[str, Any]] = []  # StartIngestionJob requests, in order
        self.calls: list[tuple[str, dict[str, Any]]] = []  # every request, by operation name
        self.jobs: list[dict[str, Any]] = []  # every job started, in order
        self.running: dict[str, Any] | None = None
        self.exists = True
        self.quota_held = False
        self.documents: dict[str, str] = {}  # uri -> status
        self.document_fails: set[str] = set()  # uris whose next ingestion fails
        self.submissions: list[tuple[str, list[str]]] = []  # (operation, uris) of each request that did work
        self._document_tokens: set[str] = set()
        self._by_token: dict[str, dict[str, Any]] = {}
        self._scripted: dict[str, deque[tuple[str, int, str]]] = defaultdict(deque)
        self._ids = (f"JOB{n:07d}" for n in itertools.count(1))
        self._clock = now

    def __enter__(self) -> FakeKnowledgeBase:
        # Registered before the Stubber activates, so the answer is queued before the Stubber checks for one.
        for operation in _OPERATIONS:
            self.client.meta.events.register(f"provide-client-params.bedrock-agent.{operation}", self._answer)
        self.stubber.activate()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stubber.deactivate()
        for operation in _OPERATIONS:
            self.client.meta.events.unregister(f"provide-client-params.bedrock-agent.{operation}", self._answer)

    # --- scenario controls ------------------------------------------------------------------------------------

    def start_elsewhere(self) -> dict[str, Any]:
        """A job started outside the pipeline (console, another caller) is now running."""
        self.running = self._new_job(description="started outside the pipeline")
        return self.running

    def finish_running_job(self, status: str = "COMPLETE", failed_documents: int = 0,
                           reasons: tuple[str, ...] = ()) -> None:
        assert self.running is not None, "no job is running"
        self.running["status"] = status
        self.running["statistics"]["numberOfDocumentsFailed"] = failed_documents
        if reasons:
            self.running["failureReasons"] = list(reasons)
        self.running = None

    def hold_account_quota(self, held: bool = True) -> None:
        """Other stacks' jobs take every concurrent ingestion job the account may run."""
        self.quota_held = held

    def settle_documents(self) -> None:
        for uri, status in list(self.documents.items()):
            if status == "STARTING":
                self.documents[uri] = "FAILED" if uri in self.document_fails else "INDEXED"
                self.document_fails.discard(uri)
            elif status == "DELETING":
                del self.documents[uri]

    def fail_next(self, code: str, http_status: int, message: str, operation: str = "StartIngestionJob") -> None:
        self._scripted[operation].append((code, http_status, message))

    @property
    def tokens(self) -> list[str]:
        return [request["clientToken"] for request in self.requests]

    def called(self, operation: str) -> list[dict[str, Any]]:
        return [request for name, request in self.calls if name == operation]

    # --- Bedrock's decision -----------------------------------------------------------------------------------

    def _answer(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        operation = model.name
        request = dict(params)
        self.calls.append((operation, request))
        if operation == "StartIngestionJob":
            self.requests.append(request)
        if self._scripted[operation]:
            code, status, message = self._scripted[operation].popleft()
            return self._error(operation, request, code, message, status)
        if not self.exists or request["knowledgeBaseId"] != self.knowledge_base_id:
            return self._error(operation, request, "ResourceNotFoundException",
                               f"Knowledge base {request['knowledgeBaseId']} not found")
        return getattr(self, f"_{_OPERATIONS[operation]}")(operation, request)

    def _start_ingestion_job(self, operation: str, request: dict[str, Any]) -> None:
        if request.get("clientToken") in self._by_token:
            return self._respond(operation, request, {"ingestionJob": dict(self._by_token[request["clientToken"]])})
        if self.running is not None:
            return self._error(operation, request, "ConflictException",
                               "An ingestion job is already in progress for this data source")
        if self.quota_held:
            return self._error(operation, request, "ServiceQuotaExceededException",
                               "The number of concurrent ingestion jobs in this account has reached its limit")
        job = self._new_job(description=request.get("description"))
        self._by_token[request["clientToken"]] = job
        self.running = job
        return self._respond(operation, request, {"ingestionJob": dict(job)})

    def _get_ingestion_job(self, operation: str, request: dict[str, Any]) -> None:
        job = next((j for j in self.jobs if j["ingestionJobId"] == request["ingestionJobId"]), None)
        if job is None:
            return self._error(operation, request, "ResourceNotFoundException", "No such ingestion job")
        return self._respond(operation, request, {"ingestionJob": dict(job)})

    def _list_ingestion_jobs(self, operation: str, request: dict[str, Any]) -> None:
        wanted = {v for f in request.get("filters", []) for v in f["values"]}
        jobs = sorted((j for j in self.jobs if not wanted or j["status"] in wanted),
                      key=lambda j: j["startedAt"], reverse=True)[: request.get("maxResults", 1000)]
        summaries = [{k: j[k] for k in ("knowledgeBaseId", "dataSourceId", "ingestionJobId", "status", "startedAt",
                                        "updatedAt")} for j in jobs]
        return self._respond(operation, request, {"ingestionJobSummaries": summaries})

    def _ingest_knowledge_base_documents(self, operation: str, request: dict[str, Any]) -> None:
        uris = [d["content"]["s3"]["s3Location"]["uri"] for d in request["documents"]]
        return self._submit(operation, request, uris, "STARTING")

    def _delete_knowledge_base_documents(self, operation: str, request: dict[str, Any]) -> None:
        uris = [d["s3"]["uri"] for d in request["documentIdentifiers"]]
        return self._submit(operation, request, uris, "DELETING")

    def _submit(self, operation: str, request: dict[str, Any], uris: list[str], status: str) -> None:
        if request.get("clientToken") not in self._document_tokens:
            self._document_tokens.add(request["clientToken"])
            self.submissions.append((operation, uris))
            for uri in uris:
                self.documents[uri] = status
        return self._respond(operation, request, {"documentDetails": [self._detail(uri) for uri in uris]})

    def _get_knowledge_base_documents(self, operation: str, request: dict[str, Any]) -> None:
        uris = [d["s3"]["uri"] for d in request["documentIdentifiers"]]
        return self._respond(operation, request, {"documentDetails": [self._detail(uri) for uri in uris]})

    def _detail(self, uri: str) -> dict[str, Any]:
        detail = {"knowledgeBaseId": self.knowledge_base_id, "dataSourceId": self.data_source_id,
                  "status": self.documents.get(uri, "NOT_FOUND"),
                  "identifier": {"dataSourceType": "S3", "s3": {"uri": uri}}, "updatedAt": self._clock()}
        if detail["status"] == "FAILED":
            detail["statusReason"] = "The document could not be parsed"
        return detail

    def _new_job(self, description: str | None) -> dict[str, Any]:
        now = self._clock()
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

    def _respond(self, operation: str, request: dict[str, Any], response: dict[str, Any]) -> None:
        self.stubber.add_response(_OPERATIONS[operation], response, expected_params=request)

    def _error(self, operation: str, request: dict[str, Any], code: str, message: str,
               status: int | None = None) -> None:
        self.stubber.add_client_error(
            _OPERATIONS[operation],
            service_error_code=code,
            service_message=message,
            http_status_code=status or _ERROR_STATUS.get(code, 400),
            expected_params=request,
        )
