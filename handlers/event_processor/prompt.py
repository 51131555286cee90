"""The prompt the model gets, and the structured part of what it answers. Pure.

>>> render("Label: {{labels}}\\n<item>{{content}}</item>", "hello", ("spam", "ham"))
'Label: spam, ham\\n<item>hello</item>'
>>> structured('Sure! {"label": "ham"}')
{'label': 'ham'}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from event_processor.config import CONTENT_PLACEHOLDER, LABELS_PLACEHOLDER


def render(template: str, content: str, labels: Sequence[str] = ()) -> str:
    """Fill the template. Labels first, so an item that happens to contain ``{{labels}}`` stays as written."""
    return template.replace(LABELS_PLACEHOLDER, ", ".join(labels)).replace(CONTENT_PLACEHOLDER, content)


def structured(text: str) -> dict[str, Any] | None:
    """The JSON object the prompt asked for: the whole answer, or the outermost ``{...}`` inside it.

    None when there is none; the raw text is kept either way, so nothing the model said is lost.
    """
    candidates = [text.strip()]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None
