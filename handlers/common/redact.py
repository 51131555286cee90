"""What a log entry may say about a value a producer controls: its digest, its size, or a clipped short form.

Logs outlive the messages they describe and are read by more people, so they carry no producer content (item
text, object keys, message bodies): a SHA-256 digest lets an operator match an entry to the message in a DLQ, or
to a key they already know, without the entry holding the value. Short identifiers may be shown, clipped, so one
oversized field cannot blow up a log line.

>>> digest("documents/a.pdf", 16)
'31b18f972e3310e9'
>>> clip("x" * 10, 4)
'xxxx…(10 chars)'
"""

from __future__ import annotations

import hashlib


def digest(value: str, length: int = 64) -> str:
    """The SHA-256 hex digest of ``value`` (UTF-8; a lone surrogate kept as its escape), cut to ``length``."""
    return hashlib.sha256(value.encode("utf-8", "backslashreplace")).hexdigest()[:length]


def clip(value: str, limit: int = 120) -> str:
    """``value`` as is when short, else its first ``limit`` characters and its length; safe in a JSON log line."""
    shown = value if len(value) <= limit else f"{value[:limit]}…({len(value)} chars)"
    return shown.encode("utf-8", "backslashreplace").decode("utf-8")
