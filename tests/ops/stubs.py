"""Answer chosen operations of a client moto otherwise serves, as ``botocore.stub.Stubber`` does for a whole client.

moto has no SQS message-move tasks; Stubber would take over every call of the client. ``PartialStub`` answers only
the named operations, each with a response that botocore's model validates (as Stubber validates its responses);
the client itself validates the parameters, and every other call goes on to moto.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ParamValidationError
from botocore.validate import ParamValidator


class PartialStub:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.responses: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register_first(f"before-parameter-build.{service}", self._record)
        client.meta.events.register_first(f"before-call.{service}", self._answer)

    def add_response(self, operation: str, response: dict[str, Any]) -> None:
        shape = self.client.meta.service_model.operation_model(operation).output_shape
        report = ParamValidator().validate(response, shape)
        if report.has_errors():
            raise ParamValidationError(report=report.generate_report())
        self.responses[operation].append(response)

    def called(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == operation]

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in self.responses:
            self.calls.append((model.name, dict(params)))

    def _answer(self, model: Any, **_: Any) -> tuple[Any, dict[str, Any]] | None:
        if model.name not in self.responses:
            return None
        if not self.responses[model.name]:
            raise AssertionError(f"unexpected {model.name}: no response left")
        response = self.responses[model.name].pop(0)
        return AWSResponse("https://stubbed", 200, {}, None), {**response, "ResponseMetadata": {"HTTPStatusCode": 200}}
