"""Object keys as S3 event notifications carry them.

S3 URL-encodes the key in a notification the way an HTML form does: a space arrives as ``+``, a literal ``+``
as ``%2B`` and every non-ASCII character as the %-escaped bytes of its UTF-8 encoding. A handler that uses the
raw value names an object that does not exist.

Example::

    >>> decode_event_key("docs/red+flower%2B%C3%A9.pdf")
    'docs/red flower+é.pdf'
"""

from __future__ import annotations

from urllib.parse import unquote_plus


def decode_event_key(raw_key: str) -> str:
    """Return the real object key for a key taken from an S3 event notification.

    Raises ``UnicodeDecodeError`` (a ``ValueError``) when the escapes do not spell valid UTF-8: S3 keys are
    always UTF-8, so such a key did not come from S3 and guessing a replacement would name the wrong object.
    """
    return unquote_plus(raw_key, encoding="utf-8", errors="strict")
