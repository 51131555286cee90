"""Reconciler: ``batch_inference.reconciler.handler``, invoked by an EventBridge Scheduler schedule.

EventBridge delivers Bedrock's job events on a best-effort basis, so the reconciler lists this pipeline's recent
jobs (``ListModelInvocationJobs``, names starting with JOB_NAME_PREFIX, submitted in the last
RECONCILE_LOOKBACK_HOURS) and, per job with a jobs-table item not yet settled:

* finished (Completed, PartiallyCompleted, Failed, Stopped, Expired): puts ``{"source": "reconciler", "jobArn"}``
  on the completion queue, where the completion handler settles it exactly as it would the missed event (a late
  or duplicate event afterwards changes nothing);
* still running: sends the waiting child a heartbeat, so its HeartbeatSeconds bound catches only a lost job, not
  a slow one.

Step Functions' execution status change events are best effort too, so it also lists this state machine's runs
that ended FAILED, TIMED_OUT or ABORTED in the lookback window (and at least RUN_ENDING_GRACE ago, so the event has
had its chance) and puts each ending not yet published on the run-endings queue, shaped as that event, where the
run-ended handler reports it as it would the missed event (a late event afterwards changes nothing).

Input ``{"source": "schedule", "scheduledTime": "..."}``; output the counts of what it did.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from batch_inference import clients, jobs
from batch_inference.config import ReconcilerSettings
from batch_inference.exceptions import InvalidTaskInputError
from batch_inference.resume import GONE
from batch_inference.tasks import STATUS_CHANGE, UNSUCCESSFUL, ScheduledTick

logger = Logger()
metrics = Metrics()
settings = ReconcilerSettings.from_env()
# An ending younger than this may still have its event on the way; the next tick looks again.
RUN_ENDING_GRACE = timedelta(minutes=5)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, int]:
    try:
        parse(event=event, model=ScheduledTick)
    except ValidationError:
        raise InvalidTaskInputError('the reconciler takes {"source": "schedule"} from its schedule') from None
    return reconcile(datetime.now(UTC))


def reconcile(now: datetime) -> dict[str, int]:
    table = jobs.JobsTable(clients.dynamodb(), settings.jobs_table, 86400)
    done = {"listed": 0, "requeued": 0, "heartbeats": 0, "settled": 0, "unknown": 0}
    pages = clients.bedrock().get_paginator("list_model_invocation_jobs").paginate(
        nameContains=f"{settings.job_name_prefix}-", submitTimeAfter=now - timedelta(hours=settings.lookback_hours),
        sortBy="CreationTime", sortOrder="Descending")
    for page in pages:
        for summary in page.get("invocationJobSummaries", []):
            name = str(summary["jobName"])
            if not name.startswith(f"{settings.job_name_prefix}-"):
                continue
            done["listed"] += 1
            record = table.get(name)
            if record is None:
                done["unknown"] += 1
                continue
            if record.status in jobs.SETTLED:
                done["settled"] += 1
                continue
            if summary["status"] in jobs.TERMINAL_JOB_STATUSES:
                clients.sqs().send_message(QueueUrl=settings.completion_queue_url, MessageBody=json.dumps(
                    {"source": "reconciler", "jobArn": summary["jobArn"], "status": summary["status"]}))
                logger.warning("Finished job without a settled shard: completion event missed; requeued",
                               extra={"jobName": name, "status": summary["status"]})
                done["requeued"] += 1
            elif record.task_token and _heartbeat(record.task_token):
                done["heartbeats"] += 1
    done["endingsRequeued"] = requeue_missed_endings(table, now)
    metrics.add_metric(name="MissedCompletions", unit=MetricUnit.Count, value=done["requeued"])
    metrics.add_metric(name="MissedRunEndings", unit=MetricUnit.Count, value=done["endingsRequeued"])
    logger.info("Reconciled", extra=done)
    return done


def requeue_missed_endings(table: jobs.JobsTable, now: datetime) -> int:
    """Put every recent unsuccessful run ending that was never reported on the run-endings queue; how many."""
    oldest, newest = now - timedelta(hours=settings.lookback_hours), now - RUN_ENDING_GRACE
    states = clients.stepfunctions()
    requeued = 0
    for status in UNSUCCESSFUL:
        # Every page: executions are listed by their first start, which says nothing of when a long or redriven
        # run ended; a state machine's unsuccessful runs (kept 90 days) are few.
        pages = states.get_paginator("list_executions").paginate(stateMachineArn=settings.state_machine_arn,
                                                                 statusFilter=status)
        for page in pages:
            for execution in page.get("executions", []):
                stopped = execution.get("stopDate")
                if stopped is None or not oldest <= stopped <= newest:
                    continue
                ending = f"{status}#{execution.get('redriveCount', 0)}"
                if table.publication_settled(str(execution["name"]), ending):
                    continue
                described = states.describe_execution(executionArn=execution["executionArn"])
                clients.sqs().send_message(QueueUrl=settings.run_endings_queue_url, MessageBody=json.dumps({
                    "source": "reconciler", "detail-type": STATUS_CHANGE, "detail": {
                        "name": execution["name"], "status": status, "input": described.get("input"),
                        "error": described.get("error"), "cause": described.get("cause"),
                        "redriveCount": execution.get("redriveCount", 0)}}))
                logger.warning("Run ended without a reported ending: status-change event missed; requeued",
                               extra={"runId": execution["name"], "ending": ending})
                requeued += 1
    return requeued


def _heartbeat(token: str) -> bool:
    try:
        clients.stepfunctions().send_task_heartbeat(taskToken=token)
    except ClientError as error:
        if error.response["Error"]["Code"] in GONE:
            return False
        raise
    return True
