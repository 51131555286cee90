"""Resume a waiting mode A child from its jobs-table item: success with the shard's counts, or failure.

A token that Step Functions no longer knows (the child timed out, was retried with a new token, or the execution
ended) is logged and ignored: the item keeps the shard's outcome, and the newest token is the one that counts.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from batch_inference import jobs

logger = Logger(child=True)
GONE = {"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"}
JOB_FAILED_ERROR = "BedrockJobFailed"


def resume(client: Any, record: jobs.JobRecord, *, cause: str = "") -> bool:
    """True when Step Functions accepted the resumption."""
    if not record.task_token:
        logger.warning("No task token stored for this shard; nothing to resume", extra={"jobName": record.job_key})
        return False
    try:
        if record.status == jobs.FAILED:
            client.send_task_failure(taskToken=record.task_token, error=JOB_FAILED_ERROR,
                                     cause=(cause or json.dumps(record.counts or {}))[:32_000])
        else:
            client.send_task_success(taskToken=record.task_token, output=json.dumps(
                {"shardId": record.shard_id, "jobArn": record.job_arn, "status": record.status,
                 "counts": record.counts or {}}))
    except ClientError as error:
        if error.response["Error"]["Code"] in GONE:
            logger.info("The task token is no longer waiting", extra={"jobName": record.job_key,
                                                                      "code": error.response["Error"]["Code"]})
            return False
        raise
    return True
