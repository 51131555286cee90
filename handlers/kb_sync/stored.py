"""Which documents the data-source bucket holds now: what direct ingestion makes the knowledge base match.

Why: direct ingestion applies each SQS batch as it comes, and S3's ``sequencer`` orders the events of a key only
within one batch. A standard queue may reorder messages and two workers run at once, so a key deleted and uploaded
again seconds later can have its removal applied after its re-upload, and the index would lose a document that S3
holds (or, the other way round, keep one S3 no longer holds). A notification therefore says only *which*
documents changed; what to do with each is decided by the bucket as it is now: a key that exists is ingested, a
key that does not is deleted. Whatever order the notifications come in and however they are grouped, the last
submission of a key follows its last change, and says what S3 holds. (Ingestion jobs list the bucket themselves,
so order never mattered for them.)

A listing and the submission after it are not one step: a worker that listed a key just before it was uploaded
again may submit its deletion just after another worker ingested the upload. The other worker's document check
(``watching``) then finds its document gone, asks the bucket again, and submits it as the bucket holds it. So the
index ends as S3 is, whatever the order; a check whose document already matches the bucket is done.

How: ``ListObjectsV2`` with the key as prefix and ``MaxKeys`` 1. The key itself sorts first among the keys it
begins (S3 lists in UTF-8 binary order), and S3 lists strongly consistently after a write or a delete. Chosen over
``HeadObject``, which would need ``s3:GetObject`` (the contents of every document, which the worker never reads:
Bedrock does) and ``s3:ListBucket`` besides, or S3 answers a missing key with 403 instead of 404. Listing needs
``s3:ListBucket`` alone, limited to the document prefix by an ``s3:prefix`` condition. At most
``BURST_THRESHOLD_DOCUMENTS`` listings a batch (LIST requests at $0.005 per 1,000).

A key outside the document prefix (a notification whose key is not valid UTF-8, shown as received) names no
document of this data source and is taken as absent without asking S3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from common.retry import error_code
from kb_sync.config import Settings
from kb_sync.exceptions import BucketListingError
from kb_sync.messages import DocumentChange


def as_stored(client: Any, settings: Settings, changes: Sequence[DocumentChange]) -> list[DocumentChange]:
    """Each document's change as the bucket holds it now: ``created`` if its key exists, ``removed`` if not."""
    return [DocumentChange(kind="created" if _exists(client, settings, change.uri) else "removed", uri=change.uri)
            for change in changes]


def _exists(client: Any, settings: Settings, uri: str) -> bool:
    key = uri.removeprefix(f"s3://{settings.document_bucket}/")
    if key == uri or not key.startswith(settings.document_prefix):
        return False
    try:
        listed = client.list_objects_v2(Bucket=settings.document_bucket, Prefix=key, MaxKeys=1)
    except (ClientError, BotoCoreError) as error:
        raise BucketListingError(
            f"could not tell whether a document of knowledge base {settings.knowledge_base_id} still exists in "
            f"{settings.document_bucket} (ListObjectsV2: {error_code(error)})") from error
    return any(entry.get("Key") == key for entry in listed.get("Contents", []))
