"""Read one announced object from S3, streaming, never more than the size limit.

``s3:GetObject`` on exactly the announced key. When the notification carried the object's ETag the read is
conditional on it (``If-Match``), so the rows always come from the content the notification announced: an object
overwritten since has its own notification on the way, and this one is skipped (``ObjectGoneError``), as is one
deleted since. The version recorded with every row (part of the natural key) is the announced version id, else the
announced ETag, else what the read returned, so every delivery of one notification names the same version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from file_ingestion.events import ObjectRef
from file_ingestion.exceptions import ObjectReadError
from file_ingestion.parse import InvalidFileError, InvalidReason

_CHUNK_BYTES = 256 * 1024
_GONE = {"NoSuchKey": "deleted since it was announced", "PreconditionFailed": "overwritten since it was announced",
         "412": "overwritten since it was announced", "404": "deleted since it was announced"}


class ObjectGoneError(Exception):
    """The announced content no longer exists (deleted or overwritten); skipped by design."""


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
    if ref.etag:
        params["IfMatch"] = ref.etag
    try:
        response = s3.get_object(**params)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "Unknown"))
        if code in _GONE:
            raise ObjectGoneError(_GONE[code]) from None
        raise ObjectReadError(f"s3://{ref.bucket}/{ref.key}: GetObject failed: {code}") from None
    except BotoCoreError as error:
        raise ObjectReadError(f"s3://{ref.bucket}/{ref.key}: GetObject failed: {type(error).__name__}") from None
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
        raise ObjectReadError(f"s3://{ref.bucket}/{ref.key}: reading the body failed: {type(error).__name__}") from None
    finally:
        body.close()
    return FileContent(ref, b"".join(chunks), _version(ref, response))


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
