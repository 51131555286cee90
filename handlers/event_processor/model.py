"""Ask the model; the only module that calls Bedrock.

IAM: ``bedrock:InvokeModel`` (Converse is authorized as InvokeModel) on the configured model's
``foundation-model`` ARN, or on its ``inference-profile`` ARN and the model in each region the profile routes to.

Throttling, model timeouts, a model not yet ready and server-side failures are retried with backoff inside the
budget (`common.retry`, with its table of Bedrock's retryable codes); the client itself makes a single attempt, so
there is exactly one retry policy. Anything else
(access denied, validation, an unknown model) fails the record at once: retrying would not change the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from common.retry import Backoff, Budget, BudgetExhaustedError, error_code, retry, retryable
from event_processor.config import MODEL_BACKOFF, Settings
from event_processor.events import ModelAnswer, Usage
from event_processor.exceptions import InvalidModelAnswerError, ModelCallError, RetriesExhaustedError

is_retryable = retryable("bedrock-runtime")

_CAUSES = {
    "AccessDeniedException": "access denied; the role needs bedrock:InvokeModel on this model (and model access "
                             "must be granted in the Bedrock console)",
    "ResourceNotFoundException": "the model or inference profile does not exist in this region",
    "ValidationException": "Bedrock rejected the request as invalid (too long for the model's context?)",
    "ModelErrorException": "the model failed to process the request",
}


@dataclass(frozen=True)
class Question:
    system: str  # the instructions (Converse ``system``)
    user: str  # the fenced item (the user turn)
    tool: dict[str, Any]  # the toolSpec whose input schema is the task's answer schema


@dataclass(frozen=True)
class Reply:
    answer: ModelAnswer  # ``structured`` unset: only a validated tool input becomes the structured result
    tool_input: Any  # the input of the forced tool call, as the model gave it (None when it made no such call)


def converse_request(settings: Settings, question: Question) -> dict[str, Any]:
    return {
        "modelId": settings.model_id,
        "system": [{"text": question.system}],
        "messages": [{"role": "user", "content": [{"text": question.user}]}],
        "inferenceConfig": {"maxTokens": settings.max_output_tokens, "temperature": settings.temperature},
        # The answer is the forced call of the one tool whose input schema is the task's schema.
        "toolConfig": {"tools": [{"toolSpec": question.tool}], "toolChoice": {"tool": {"name": question.tool["name"]}}},
    }


def reply_of(response: dict[str, Any], tool_name: str, now: datetime | None = None) -> Reply:
    content = response.get("output", {}).get("message", {}).get("content", [])
    text = "".join(block["text"] for block in content if "text" in block)
    calls = [block["toolUse"] for block in content if "toolUse" in block]
    tool_input = next((call.get("input") for call in calls if call.get("name") == tool_name), None)
    usage = response.get("usage", {})
    answer = ModelAnswer(
        text=text,
        stopReason=str(response.get("stopReason", "unknown")),
        usage=Usage(inputTokens=int(usage.get("inputTokens", 0)), outputTokens=int(usage.get("outputTokens", 0))),
        completedAt=(now or datetime.now(UTC)).isoformat(timespec="milliseconds"),
    )
    return Reply(answer=answer, tool_input=tool_input)


def ask(client: Any, settings: Settings, question: Question, *, budget: Budget, backoff: Backoff = MODEL_BACKOFF,
        on_retry: Callable[[int, float, BaseException], None] | None = None) -> Reply:
    """One reply from the model, retrying transient failures inside ``budget``."""
    request = converse_request(settings, question)
    try:
        response = retry(lambda: client.converse(**request), retryable=is_retryable, budget=budget,
                         attempt_seconds=settings.model_timeout_seconds, backoff=backoff, on_retry=on_retry)
    except (RecursionError, ValueError) as error:  # botocore could not parse the answer (nesting, huge numbers)
        raise InvalidModelAnswerError(f"model {settings.model_id}: the answer could not be parsed "
                                      f"({type(error).__name__})") from None
    except BudgetExhaustedError as exhausted:
        code = error_code(exhausted.last)
        raise RetriesExhaustedError(
            f"model {settings.model_id}: {code} persisted through {exhausted.attempts} attempt(s) and the time "
            f"budget is spent; SQS will retry the item after its visibility timeout",
            attempts=exhausted.attempts, code=code) from exhausted.last
    except ClientError as error:
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message", "")
        cause = _CAUSES.get(code, "Bedrock returned an unexpected error")
        raise ModelCallError(f"model {settings.model_id}: {cause} ({code}: {message})", code=code) from error
    return reply_of(response, question.tool["name"])
