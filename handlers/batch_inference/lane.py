"""The failure lane: an SQS queue that holds every record the pipeline could not process, for inspection and
replay. One message per record, ``dedupeKey`` attribute = the record's key in its run's ledger (unique together
with the body's ``runId``), so a consumer can recognise a record it has seen (the ledger already keeps the pipeline
from sending one twice, outside a crash between send and mark).

Message body::

    {"runId": "...", "stage": "shard|model|job|unit", "reason": "...", "detail": "...",
     "recordId": "..." | null, "lineNumber": 12 | null, "source": {"bucket": "...", "key": "..."}}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from batch_inference.exceptions import FailureLaneError

_BATCH = 10  # SendMessageBatch's maximum


@dataclass(frozen=True)
class LaneRecord:
    run_id: str
    stage: str
    reason: str
    detail: str
    dedupe_key: str
    record_id: str | None = None
    line_number: int | None = None
    bucket: str | None = None
    key: str | None = None

    def body(self) -> str:
        fields = asdict(self)
        fields.pop("dedupe_key")
        bucket, key = fields.pop("bucket"), fields.pop("key")
        return json.dumps({"runId": fields["run_id"], "stage": self.stage, "reason": self.reason,
                           "detail": self.detail, "recordId": self.record_id, "lineNumber": self.line_number,
                           "source": {"bucket": bucket, "key": key}}, ensure_ascii=False)


def send(client: Any, queue_url: str, records: Sequence[LaneRecord]) -> None:
    """Send every record; raise `FailureLaneError` if SQS refuses any after one retry of the refused ones."""
    for start in range(0, len(records), _BATCH):
        pending = {str(i): r for i, r in enumerate(records[start:start + _BATCH])}
        for _attempt in range(2):
            response = client.send_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": entry_id, "MessageBody": record.body(),
                 "MessageAttributes": {"dedupeKey": {"DataType": "String", "StringValue": record.dedupe_key}}}
                for entry_id, record in pending.items()])
            pending = {f["Id"]: pending[f["Id"]] for f in response.get("Failed", [])}
            if not pending:
                break
        if pending:
            raise FailureLaneError(f"the failure lane refused {len(pending)} message(s): "
                                   f"{', '.join(r.dedupe_key for r in pending.values())[:500]}")
