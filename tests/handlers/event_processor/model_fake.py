"""Bedrock's side of ``Converse``, answered through botocore's ``Stubber`` on the handler's own client.

moto does not emulate Bedrock runtime. The ``Stubber`` checks each canned response against the real
``bedrock-runtime`` output shape and each request against the parameters expected for it; this class decides, per
request, what Bedrock would answer:

* by default a classification whose label follows the item's text (so a result can be traced to its input),
  given as the model gives it: a call of the forced tool, its input the answer; ``answer`` may instead return
  text (a model that ignores the tool) or a list of content blocks (any other shape Converse allows);
* scripted errors first (``fail_next``: throttling, timeouts, access denied...), or every call failing
  (``outage``) until it is lifted;
* ``latency`` seconds per call, spent outside any lock, so concurrent calls overlap as they would against Bedrock;
* ``hold()``: calls wait at the gate until ``release()``, to keep a first copy in flight while a second arrives.

The handler calls from several threads at once, while a ``Stubber`` serves its queue in order; a lock taken when
the request is built and released once the Stubber has answered pairs each request with the answer chosen for it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from botocore.stub import Stubber
from botocore.validate import validate_parameters

_BUILD = "provide-client-params.bedrock-runtime.Converse"
_ANSWERED = "after-call.bedrock-runtime.Converse"
_STATUS = {"ThrottlingException": 429, "ModelTimeoutException": 408, "ServiceUnavailableException": 503,
           "InternalServerException": 500, "ModelNotReadyException": 429, "AccessDeniedException": 403,
           "ValidationException": 400, "ResourceNotFoundException": 404, "ModelErrorException": 424}

LABELS = ("invoice", "contract", "complaint", "other")


Answer = dict[str, Any] | str | list[dict[str, Any]]


def classify_text(prompt: str) -> Answer:
    """The fake model's answer: the first label the item mentions, else "other"."""
    item = prompt.rsplit("<item>", 1)[-1].lower()
    label = next((label for label in LABELS if label in item), "other")
    return {"label": label, "confidence": 0.9}


def content_of(answer: Answer, request: dict[str, Any]) -> list[dict[str, Any]]:
    """Converse's content blocks for `answer`: a tool input becomes a call of the request's forced tool."""
    if isinstance(answer, str):
        return [{"text": answer}]
    if isinstance(answer, list):
        return answer
    tool = request["toolConfig"]["toolChoice"]["tool"]["name"]
    return [{"toolUse": {"toolUseId": "tooluse_fake", "name": tool, "input": answer}}]


class FakeModel:
    def __init__(self, client: Any, *, latency: float = 0.0, answer: Callable[[str], Answer] = classify_text) -> None:
        self.client = client
        self.stubber = Stubber(client)
        self.latency = latency
        self.answer = answer
        self.requests: list[dict[str, Any]] = []  # every Converse request, in order
        self.answered: list[dict[str, Any]] = []  # the requests that got an answer (not an error)
        self._scripted: deque[str] = deque()
        self._outage: str | None = None
        self._lock = threading.Lock()
        self._gate = threading.Event()
        self._gate.set()
        self.waiting = threading.Semaphore(0)  # released once per call that reached a held gate
        self.in_flight = 0
        self.max_in_flight = 0  # the most calls Bedrock was serving at the same time
        self._flight = threading.Lock()

    def __enter__(self) -> FakeModel:
        self.client.meta.events.register(_BUILD, self._choose)
        self.client.meta.events.register(_ANSWERED, self._answered)
        self.stubber.activate()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
        self.stubber.deactivate()
        self.client.meta.events.unregister(_BUILD, self._choose)
        self.client.meta.events.unregister(_ANSWERED, self._answered)

    # --- scenario controls ------------------------------------------------------------------------------------

    def fail_next(self, code: str, times: int = 1) -> None:
        self._scripted.extend([code] * times)

    def outage(self, code: str | None = "ServiceUnavailableException") -> None:
        """Every call fails with `code` until `outage(None)`."""
        self._outage = code

    def hold(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    @property
    def calls(self) -> int:
        return len(self.requests)

    def prompts(self) -> list[str]:
        """The user turn of every request: the fenced item."""
        return [r["messages"][0]["content"][0]["text"] for r in self.requests]

    def systems(self) -> list[str]:
        """The instructions of every request."""
        return [r["system"][0]["text"] for r in self.requests]

    # --- Bedrock's decision -----------------------------------------------------------------------------------

    def _choose(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        validate_parameters(params, model.input_shape)  # an invalid request fails here, before the lock is taken
        self._lock.acquire()
        request = dict(params)
        self.requests.append(request)
        code = self._scripted.popleft() if self._scripted else self._outage
        if code is not None:
            self.stubber.add_client_error("converse", service_error_code=code, service_message=f"fake {code}",
                                          http_status_code=_STATUS.get(code, 400), expected_params=request)
            return
        self.answered.append(request)
        content = content_of(self.answer(request["messages"][0]["content"][0]["text"]), request)
        self.stubber.add_response("converse", {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": "tool_use" if any("toolUse" in block for block in content) else "end_turn",
            "usage": {"inputTokens": 120, "outputTokens": 16, "totalTokens": 136},
            "metrics": {"latencyMs": int(self.latency * 1000)},
        }, expected_params=request)

    def _answered(self, **_: Any) -> None:
        self._lock.release()
        with self._flight:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if not self._gate.is_set():
                self.waiting.release()
                self._gate.wait(timeout=30)
            if self.latency:
                time.sleep(self.latency)
        finally:
            with self._flight:
                self.in_flight -= 1
