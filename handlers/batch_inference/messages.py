"""The SQS-fed handlers' batches: each message handled alone, failures reported per message (partial batch
response), so one bad message is retried and dead-lettered without holding back the others."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext


def each_message(event: Any, context: LambdaContext, handle: Callable[[SQSRecord], None]) -> dict[str, Any]:
    # One processor per invocation: nothing of one batch's bookkeeping can leak into another's.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(process_partial_response(event=event, record_handler=handle, processor=processor, context=context))
