"""What a function's log says about one message: the functions log JSON lines naming the ``messageId``."""

from __future__ import annotations

import json
from typing import Any

FIELDS = ("reason", "errorType", "error", "detail", "code")


def why(logs: Any, function_name: str, term: str, *, since_ms: int, limit: int = 20) -> str | None:
    """The last entry of ``/aws/lambda/<function_name>`` that names ``term``, as "message (field=value, ...)"."""
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{function_name}", filterPattern=f'"{term}"',
                                        startTime=max(0, since_ms), limit=limit).get("events", [])
    except logs.exceptions.ResourceNotFoundException:
        return None
    if not events:
        return None
    return summarize(events[-1].get("message", ""))


def summarize(line: str) -> str:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return line.strip()[:300]
    if not isinstance(entry, dict):
        return line.strip()[:300]
    details = ", ".join(f"{k}={str(entry[k])[:200]}" for k in FIELDS if entry.get(k) not in (None, ""))
    message = str(entry.get("message", ""))[:200]
    return f"{message} ({details})" if details else message
