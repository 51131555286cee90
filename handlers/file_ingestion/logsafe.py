"""Producer-controlled values, made safe to log: clipped to a bounded length, and named by a short hash.

An object key may be 1 KiB, a message body 64 KiB, and either may carry personal data or terminal escapes; a log
entry carries at most ``LIMIT`` characters of one (with how many more there were) and, where it identifies a
file, the first 16 hex digits of its SHA-256, which finds every entry about that key without holding it.

>>> clip("a" * 300, 10)
'aaaaaaaaaa...(+290 chars)'
>>> digest("input/orders/a.json")
'037be78492b9d71b'
"""

from __future__ import annotations

import hashlib

LIMIT = 160


def clip(value: object, limit: int = LIMIT) -> str:
    """``value`` as text of at most ``limit`` characters (plus the marker saying how many were cut), printable."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = f"{text[:limit]}...(+{len(text) - limit} chars)"
    return text.encode("utf-8", "backslashreplace").decode("utf-8").translate(_CONTROLS)


def digest(value: str) -> str:
    """The first 16 hex digits of the SHA-256 of ``value``'s UTF-8 (lone surrogates escaped)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# Control characters (a newline, an escape) become visible escapes: a value cannot forge or garble a log line.
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7f)}
