"""A result as it is stored and as it is announced. Pure.

The stored item and the ``ProcessingCompleted`` event carry the same things: the model's answer (any text, the
validated tool input as ``structured``, why it stopped, token usage) and a reference to the input (event id,
source, detail type, item id, the producer's reference). Never the input's content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from event_processor.events import COMPLETED_DETAIL_TYPE, CompletedDetail, InputReference, ModelAnswer


@dataclass(frozen=True)
class StoredResult:
    result_id: str  # the item's idempotency key: one result per item, ever
    task: str
    model_id: str
    answer: ModelAnswer
    input: InputReference

    @property
    def result(self) -> dict[str, Any]:
        return {"output": self.answer.text, "structured": self.answer.structured,
                "stopReason": self.answer.stopReason}

    def detail(self, results_table: str) -> CompletedDetail:
        return CompletedDetail(resultId=self.result_id, task=self.task, modelId=self.model_id, result=self.result,
                               usage=self.answer.usage, input=self.input, resultsTable=results_table,
                               completedAt=self.answer.completedAt)

    def entry(self, *, bus: str, source: str, results_table: str) -> dict[str, Any]:
        """The ``PutEvents`` entry announcing this result."""
        return {"EventBusName": bus, "Source": source, "DetailType": COMPLETED_DETAIL_TYPE,
                "Detail": self.detail(results_table).model_dump_json()}

    # --- DynamoDB item (low-level attribute values) ------------------------------------------------------------

    def item(self) -> dict[str, Any]:
        reference = self.input.model_dump(exclude_none=True)
        return {
            "resultId": {"S": self.result_id},
            "task": {"S": self.task},
            "modelId": {"S": self.model_id},
            # JSON text: the structured answer may hold floats, which DynamoDB's number type would not round-trip.
            "result": {"S": json.dumps(self.result, ensure_ascii=False)},
            "answer": {"S": self.answer.model_dump_json()},
            "input": {"M": {key: {"S": str(value)} for key, value in reference.items()}},
            "inputTokens": {"N": str(self.answer.usage.inputTokens)},
            "outputTokens": {"N": str(self.answer.usage.outputTokens)},
            "completedAt": {"S": self.answer.completedAt},
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> StoredResult:
        reference = {key: value["S"] for key, value in item["input"]["M"].items()}
        return cls(result_id=item["resultId"]["S"], task=item["task"]["S"], model_id=item["modelId"]["S"],
                   answer=ModelAnswer.model_validate_json(item["answer"]["S"]),
                   input=InputReference.model_validate(reference))
