"""Records as the pipeline carries them: a deterministic recordId and a `modelInput`, a Converse request body
(``converse``, the default: the same for every model that supports Converse, and what both a batch job with
``modelInvocationType: Converse`` and the synchronous worker's Converse call take) or the model's native InvokeModel
body (``native``: Anthropic Claude and Amazon Nova only, for a model whose batch jobs do not take Converse).

Pure. The prompt template holds ``{{content}}`` (the record's text) and optionally ``{{labels}}``; the template is
turned once into a byte frame so each record costs one JSON escape of its text, not a dict build and a dump.

>>> frame = InputFrame.build("anthropic.claude-3-haiku-20240307-v1:0", "Summarize: {{content}}", max_tokens=64,
...                          temperature=0.0)
>>> line = json.loads(frame.line("doc-1", "hello"))["modelInput"]
>>> line["messages"][0]["content"][0]["text"], line["inferenceConfig"]
('Summarize: hello', {'maxTokens': 64, 'temperature': 0.0})
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import add
from typing import Any, Literal

import orjson

Family = Literal["anthropic", "nova"]
RequestFormat = Literal["converse", "native"]
REQUEST_FORMATS: tuple[RequestFormat, ...] = ("converse", "native")
# CreateModelInvocationJob's modelInvocationType for each request format.
INVOCATION_TYPES: dict[RequestFormat, str] = {"converse": "Converse", "native": "InvokeModel"}
CONTENT = "{{content}}"
LABELS = "{{labels}}"
ANTHROPIC_VERSION = "bedrock-2023-05-31"
# recordId of a line without an id: a hash of its bytes, so the same line always carries the same id.
HASH_PREFIX = "sha256-"
MAX_RECORD_ID_CHARS = 256
_MARK = "\u0000CONTENT\u0000"


def model_family(model_id: str) -> Family:
    """The native request format of `model_id` (a model id or an inference profile id)."""
    base = model_id.split(".", 1)[1] if model_id.split(".", 1)[0] in _GEOGRAPHIES else model_id
    if base.startswith("anthropic."):
        return "anthropic"
    if base.startswith("amazon.nova"):
        return "nova"
    raise ValueError(f"model {model_id}: batch inference supports Anthropic Claude and Amazon Nova models")


_GEOGRAPHIES = ("us", "eu", "apac", "us-gov", "jp", "au", "ca", "global")


def native_input(family: Family, prompt: str, *, max_tokens: int, temperature: float) -> dict[str, Any]:
    """The model's native InvokeModel body for one user prompt."""
    if family == "anthropic":
        return {"anthropic_version": ANTHROPIC_VERSION, "max_tokens": max_tokens, "temperature": temperature,
                "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}]}
    return {"schemaVersion": "messages-v1", "messages": [{"role": "user", "content": [{"text": prompt}]}],
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": temperature}}


def converse_input(prompt: str, *, max_tokens: int, temperature: float) -> dict[str, Any]:
    """The Converse request body for one user prompt (the model is named by the call or the job, not here)."""
    return {"messages": [{"role": "user", "content": [{"text": prompt}]}],
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": temperature}}


def build_model_input(request_format: RequestFormat, model_id: str, prompt: str, *, max_tokens: int,
                temperature: float) -> dict[str, Any]:
    """A record's `modelInput` in `request_format`."""
    if request_format == "converse":
        return converse_input(prompt, max_tokens=max_tokens, temperature=temperature)
    return native_input(model_family(model_id), prompt, max_tokens=max_tokens, temperature=temperature)


def converse_request(model_input: Mapping[str, Any]) -> dict[str, Any]:
    """The Converse arguments of a record's `modelInput`: a Converse body as it is (its messages, inferenceConfig
    and system prompt), a native body built by `native_input` translated."""
    if "anthropic_version" not in model_input and "schemaVersion" not in model_input:
        request = {"messages": list(model_input["messages"]),
                   "inferenceConfig": dict(model_input.get("inferenceConfig", {}))}
        if "system" in model_input:
            request["system"] = list(model_input["system"])
        return request
    messages = [{"role": m["role"], "content": [{"text": part["text"]} for part in m["content"]]}
                for m in model_input["messages"]]
    if "anthropic_version" in model_input:
        config = {"maxTokens": model_input["max_tokens"], "temperature": model_input.get("temperature", 0.0)}
    else:
        native = model_input.get("inferenceConfig", {})
        config = {"maxTokens": native.get("maxTokens", 512), "temperature": native.get("temperature", 0.0)}
    return {"messages": messages, "inferenceConfig": config}


def output_text(model_output: Mapping[str, Any]) -> str | None:
    """The generated text of a Converse response body (a Converse job's modelOutput) or a native one (Anthropic
    Messages; Nova's is shaped as Converse's), None if it has none."""
    content = model_output.get("content")
    if content is None:
        content = model_output.get("output", {}).get("message", {}).get("content")
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, Mapping) and "text" in part]
        return "".join(str(t) for t in texts)
    return None


def render_template(template: str, labels: tuple[str, ...] = ()) -> tuple[str, str]:
    """(prefix, suffix) around the record's text; the labels are filled in once."""
    head, found, tail = template.replace(LABELS, ", ".join(labels)).partition(CONTENT)
    if not found:
        raise ValueError(f"prompt template has no {CONTENT}")
    return head, tail.replace(CONTENT, "")


def content_hash_id(line: bytes) -> str:
    return HASH_PREFIX + hashlib.sha256(line).hexdigest()[:40]


def record_id_of(value: Any, line: bytes) -> str | None:
    """The recordId: the id field when present (a non-empty string or an integer), else a hash of the line.

    None when the id field is present but unusable (so the line is rejected rather than silently re-keyed).
    """
    if value is None:
        return content_hash_id(line)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if not text or len(text) > MAX_RECORD_ID_CHARS:
        return None
    return text


@dataclass(frozen=True)
class InputFrame:
    """A JSONL output line with a hole for the record's escaped text: ``{"recordId":..,"modelInput":{..}}``."""

    head: bytes  # up to and including the opening quote of the prompt text
    tail: bytes  # from the closing quote of the prompt text to the end of the line (with the newline)
    prefix: str
    suffix: str

    @classmethod
    def build(cls, model_id: str, template: str, *, max_tokens: int, temperature: float,
              labels: tuple[str, ...] = (), request_format: RequestFormat = "converse") -> InputFrame:
        prefix, suffix = render_template(template, labels)
        body = build_model_input(request_format, model_id, _MARK, max_tokens=max_tokens, temperature=temperature)
        encoded = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        before, after = encoded.split(json.dumps(_MARK, ensure_ascii=False)[1:-1])
        return cls(head=f',"modelInput":{before}'.encode() + _escape(prefix),
                   tail=_escape(suffix) + f"{after}}}\n".encode(), prefix=prefix, suffix=suffix)

    def line(self, record_id: str, text: str) -> bytes:
        """The shard line of one record."""
        return self.block([record_id], [text])[0]

    def block(self, record_ids: Sequence[str], texts: Sequence[str]) -> tuple[bytes, list[int]]:
        """The shard lines of many records (pairs of `record_ids` and `texts`), joined, and the size of each.

        A lone surrogate is not UTF-8 and raises (orjson's JSONEncodeError, a TypeError).
        """
        ids, escaped = _escape_each(record_ids), _escape_each(texts)
        opening, closing = b'{"recordId":"', b'"' + self.head
        parts = [opening, b"", closing, b"", self.tail] * len(ids)
        parts[1::5], parts[3::5] = ids, escaped  # a ValueError if the two differ in length
        fixed = len(opening) + len(closing) + len(self.tail)
        return b"".join(parts), list(map(add, map(add, map(len, ids), map(len, escaped)), repeat(fixed)))


def _escape_each(values: Sequence[str]) -> list[bytes]:
    """`_escape` of each value, in one pass in C when no value needs an escape."""
    if b"\\" in orjson.dumps(values):
        return [_escape(value) for value in values]
    # orjson escaped nothing (every escape holds a backslash), so it wrote each string as its UTF-8
    return list(map(str.encode, values))


def _escape(value: str) -> bytes:
    return orjson.dumps(value)[1:-1]
