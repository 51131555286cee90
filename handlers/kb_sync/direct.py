"""Direct ingestion: ``IngestKnowledgeBaseDocuments``, ``DeleteKnowledgeBaseDocuments`` and
``GetKnowledgeBaseDocuments`` for an S3 data source, the documents named by their S3 URIs.

IAM: ``bedrock:IngestKnowledgeBaseDocuments``, ``bedrock:DeleteKnowledgeBaseDocuments`` and
``bedrock:GetKnowledgeBaseDocuments`` on ``arn:<partition>:bedrock:<region>:<account>:knowledge-base/<id>``.

The service model allows 10 documents a request (botocore's ``KnowledgeBaseDocuments`` and
``DocumentIdentifiers`` shapes, max 10), so a change set is sent in requests of 10. Each request's
``clientToken`` is a SHA-256 of the documents it names and the submission it belongs to, so a retried invocation
repeats it and Bedrock does the work once. Ingestion is asynchronous: the answer is each document's status so
far, and a delayed ``DocumentCheck`` reads how each one ended.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kb_sync.config import Settings
from kb_sync.exceptions import DirectIngestionError
from kb_sync.messages import DocumentChange

# The service model's maximum of documents (and document identifiers) in one request.
DOCUMENTS_PER_REQUEST = 10
# Answers that mean "not this way": the batch falls back to an ingestion job, which syncs the whole data source
# and has its own way with busy data sources (a data source whose type or configuration does not allow direct
# ingestion of a document, or a direct-ingestion quota). Anything else is retried by SQS, then dead-lettered.
FALLBACK_CODES = frozenset({"ValidationException", "ServiceQuotaExceededException"})


@dataclass(frozen=True)
class Submitted:
    statuses: dict[str, str]  # uri -> document status in Bedrock's first answer


@dataclass(frozen=True)
class Refused:
    code: str
    message: str


def submit(client: Any, settings: Settings, changes: Sequence[DocumentChange], *, seed: str) -> Submitted | Refused:
    """Ingest the created documents and delete the removed ones; a refusal in ``FALLBACK_CODES`` is an answer."""
    statuses: dict[str, str] = {}
    try:
        for kind, chunk in _chunks(changes):
            token = _token(seed, kind, chunk)
            if kind == "created":
                response = client.ingest_knowledge_base_documents(
                    knowledgeBaseId=settings.knowledge_base_id, dataSourceId=settings.data_source_id,
                    clientToken=token,
                    documents=[{"content": {"dataSourceType": "S3", "s3": {"s3Location": {"uri": c.uri}}}}
                               for c in chunk])
            else:
                response = client.delete_knowledge_base_documents(
                    knowledgeBaseId=settings.knowledge_base_id, dataSourceId=settings.data_source_id,
                    clientToken=token, documentIdentifiers=[_identifier(c.uri) for c in chunk])
            statuses.update(_statuses(response))
    except ClientError as error:
        details = error.response.get("Error", {})
        code = str(details.get("Code", "Unknown"))
        if code in FALLBACK_CODES:
            return Refused(code, str(details.get("Message", "")))
        raise _failure(settings, "submit documents", f"{code}: {details.get('Message', '')}") from error
    except BotoCoreError as error:
        raise _failure(settings, "submit documents", f"the request did not complete ({error})") from error
    return Submitted(statuses)


def statuses(client: Any, settings: Settings, changes: Sequence[DocumentChange]) -> dict[str, tuple[str, str]]:
    """Each document's status (and Bedrock's reason, if any) now, by URI."""
    found: dict[str, tuple[str, str]] = {}
    try:
        for start in range(0, len(changes), DOCUMENTS_PER_REQUEST):
            chunk = changes[start:start + DOCUMENTS_PER_REQUEST]
            response = client.get_knowledge_base_documents(
                knowledgeBaseId=settings.knowledge_base_id, dataSourceId=settings.data_source_id,
                documentIdentifiers=[_identifier(c.uri) for c in chunk])
            for detail in response.get("documentDetails", []):
                uri = detail["identifier"].get("s3", {}).get("uri")
                if uri:
                    found[uri] = (detail["status"], detail.get("statusReason", ""))
    except ClientError as error:
        details = error.response.get("Error", {})
        raise _failure(settings, "read document statuses",
                       f"{details.get('Code', 'Unknown')}: {details.get('Message', '')}") from error
    except BotoCoreError as error:
        raise _failure(settings, "read document statuses", f"the request did not complete ({error})") from error
    return found


def _chunks(changes: Sequence[DocumentChange]) -> Iterator[tuple[str, list[DocumentChange]]]:
    for kind in ("created", "removed"):
        of_kind = [c for c in changes if c.kind == kind]
        for start in range(0, len(of_kind), DOCUMENTS_PER_REQUEST):
            yield kind, of_kind[start:start + DOCUMENTS_PER_REQUEST]


def _identifier(uri: str) -> dict[str, Any]:
    return {"dataSourceType": "S3", "s3": {"uri": uri}}


def _statuses(response: dict[str, Any]) -> dict[str, str]:
    return {detail["identifier"]["s3"]["uri"]: detail["status"]
            for detail in response.get("documentDetails", []) if detail.get("identifier", {}).get("s3")}


def _token(seed: str, kind: str, chunk: Sequence[DocumentChange]) -> str:
    """A lowercase SHA-256 hex digest (64 characters), inside ``ClientToken``'s 33-256 characters."""
    digest = hashlib.sha256()
    for part in (seed, kind, *(c.uri for c in chunk)):
        digest.update(part.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def _failure(settings: Settings, what: str, cause: str) -> DirectIngestionError:
    return DirectIngestionError(
        f"could not {what} for knowledge base {settings.knowledge_base_id} (data source {settings.data_source_id}): "
        f"{cause}")
