"""AWS answered at the HTTP layer, at once: what a benchmark uses to leave the services' own time out.

A ``before-send`` handler on a botocore client that returns a response stops the request there: the SDK still
serializes, signs and parses everything as it would against AWS, so the client's own work stays in the measure,
while an emulator's CPU (moto spends milliseconds per call, which real services spend on their own machines)
stays out.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator, Mapping
from typing import Any


class RawBody(io.BytesIO):
    """An HTTP body as botocore reads it: ``read`` for streaming outputs, ``stream`` for everything else."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def answer(client: Any, event: str, handler: Any) -> Any:
    """Make ``handler`` answer ``client``'s ``event`` (``before-send.s3.GetObject``) in place of any emulator.

    botocore calls every ``before-send`` handler and uses the first answer, so moto's, registered on every client
    while it is active, is taken off this client: otherwise it would still do all its work for every request.
    """
    from moto.core.models import botocore_stubber

    client.meta.events.unregister("before-send", botocore_stubber)
    client.meta.events.register_first(event, handler)
    return client


def respond(request: Any, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Any:
    from botocore.awsrequest import AWSResponse

    return AWSResponse(request.url, status, {"x-amzn-RequestId": str(uuid.uuid4()), **(headers or {})},
                       RawBody(body))
