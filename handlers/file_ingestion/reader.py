"""Read one announced object from S3, streaming, never more than the size limit.

The content read is the content the notification announced:

- With a ``versionId`` (a versioned bucket), ``s3:GetObject`` of exactly that version (``s3:GetObjectVersion``).
  A version that does not exist is not replaced by the current object: if the key still exists the message fails
  (``NoSuchVersionError``: invented, or purged while the key lives on); if the key is gone (every version deleted),
  the file is skipped (``ObjectGoneError``). A version deleted only by a delete marker still exists and is loaded.
- Without one (a bucket without versioning), the current object, conditional on the announced ETag
  (``If-Match``): one overwritten since has its own notification on the way, and this one is skipped, as is one
  deleted since (``NoSuchKey``).

The role may list the dataset prefixes (``s3:ListBucket`` with an ``s3:prefix`` condition): without it S3 answers a
missing key with 403, and a file deleted after its notification would be retried and dead-lettered as "access
denied". The version recorded with the file is the announced version id, else the announced ETag, else what the
read returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from file_ingestion.events import ObjectRef
from file_ingestion.exceptions import ObjectReadError
from file_ingestion.logsafe import clip
from file_ingestion.parse import InvalidFileError, InvalidReason

_CHUNK_BYTES = 256 * 1024
# S3's answers for a version that is not there: unknown (404), malformed (400), a delete marker (405).
_NO_VERSION = {"NoSuchVersion", "InvalidArgument", "MethodNotAllowed", "404", "400", "405"}
_GONE = {"NoSuchKey": "deleted since it was announced", "PreconditionFailed": "overwritten since it was announced",
         "412": "overwritten since it was announced", "404": "deleted since it was announced"}


class ObjectGoneError(Exception):
    """The announced content no longer exists (deleted or overwritten); skipped by design."""


class NoSuchVersionError(ObjectReadError):
    """The announced version does not exist while its key does (an invented or purged version): its message fails."""


@dataclass(frozen=True)
class FileContent:
    ref: ObjectRef
    data: bytes
    version: str


def read_object(s3: Any, ref: ObjectRef, max_bytes: int) -> FileContent:
    """The object's bytes; ``InvalidFileError(OVERSIZED)`` above ``max_bytes``, before or while reading."""
    if ref.size is not None and ref.size > max_bytes:
        raise _oversized(ref.size, max_bytes)
    params: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        params["VersionId"] = ref.version_id  # the version pins the content; no If-Match needed
    elif ref.etag:
        params["IfMatch"] = ref.etag
    where = f"s3://{ref.bucket}/{clip(ref.key)}"
    try:
        response = s3.get_object(**params)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "Unknown"))
        if ref.version_id and code in _NO_VERSION:
            if _key_exists(s3, ref):
                raise NoSuchVersionError(f"{where}: version {clip(ref.version_id, 64)} does not exist (S3: {code}); "
                                         "the key holds other versions, and the current one is not loaded in "
                                         "its place") from None
            raise ObjectGoneError(_GONE["NoSuchKey"]) from None
        if code in _GONE:
            raise ObjectGoneError(_GONE[code]) from None
        raise ObjectReadError(f"{where}: GetObject failed: {code}") from None
    except BotoCoreError as error:
        raise ObjectReadError(f"{where}: GetObject failed: {type(error).__name__}") from None
    body = response["Body"]
    try:
        length = response.get("ContentLength")
        if isinstance(length, int) and length > max_bytes:
            raise _oversized(length, max_bytes)
        chunks: list[bytes] = []
        received = 0
        for chunk in body.iter_chunks(_CHUNK_BYTES):
            received += len(chunk)
            if received > max_bytes:
                raise _oversized(received, max_bytes, at_least=True)
            chunks.append(chunk)
    except (BotoCoreError, OSError) as error:
        raise ObjectReadError(f"{where}: reading the body failed: {type(error).__name__}") from None
    finally:
        body.close()
    return FileContent(ref, b"".join(chunks), _version(ref, response))


def _key_exists(s3: Any, ref: ObjectRef) -> bool:
    """Whether any object is stored under the key now (``s3:ListBucket`` on the key as prefix)."""
    try:
        listed = s3.list_objects_v2(Bucket=ref.bucket, Prefix=ref.key, MaxKeys=1).get("Contents", [])
    except (ClientError, BotoCoreError) as error:
        raise ObjectReadError(f"s3://{ref.bucket}/{clip(ref.key)}: ListObjectsV2 failed: "
                              f"{type(error).__name__}") from None
    return any(entry.get("Key") == ref.key for entry in listed)


def _version(ref: ObjectRef, response: dict[str, Any]) -> str:
    if ref.version_id:
        return ref.version_id
    if ref.etag:
        return ref.etag.strip('"')
    version = response.get("VersionId")
    if version and version != "null":
        return str(version)
    return str(response.get("ETag", "")).strip('"')


def _oversized(size: int, limit: int, *, at_least: bool = False) -> InvalidFileError:
    return InvalidFileError(InvalidReason.OVERSIZED,
                            f"the object is {'more than ' if at_least else ''}{size} bytes; the limit is {limit}")
