"""``status``: what the stack's pipelines are doing now. Reads only.

Alarms in ALARM (with the command that answers each), then per pipeline: its dashboard, every queue's depth and
the age of its oldest message (CloudWatch's ``ApproximateAgeOfOldestMessage``, the metric the age alarms watch; SQS
itself does not report it), the batch-inference runs in progress, and the knowledge base's latest ingestion jobs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ops import lanes, runbook
from ops.aws import Clients
from ops.knowledge_base import job_line, recent_jobs, target
from ops.queues import QueueMissingError, QueueRef, depth, resolve
from ops.stack import StackOutputs

AGE_WINDOW = timedelta(minutes=15)


def run(outputs: StackOutputs, clients: Clients, *, pipeline: str | None) -> int:
    chosen = [p for p in outputs.enabled() if pipeline in (None, p)]
    if pipeline is not None and not chosen:
        print(f"the stack does not build {pipeline}")
        return 2
    firing = alarms_in_alarm(clients("cloudwatch"), outputs, chosen)
    print(f"alarms in ALARM: {len(firing)}")
    for alarm in firing:
        found = runbook.lookup(outputs.head, alarm["AlarmName"])
        answer = f"  -> python -m ops {found[1].command}" if found else ""
        print(f"  {alarm['AlarmName']} since {alarm.get('StateUpdatedTimestamp')}: "
              f"{alarm.get('StateReason', '')[:200]}{answer}")
    for name in chosen:
        print(f"\n{name}:")
        print(f"  dashboard: {dashboard_link(outputs, name)}")
        queues(outputs, clients, name)
        if name == "batchinf":
            executions(outputs, clients)
        if name == "kbsync":
            ingestion(outputs, clients)
    return 0


def dashboard_link(outputs: StackOutputs, pipeline: str) -> str:
    """The pipeline's dashboard (its ``dashboardName`` output, else the name the program gives it) and its console
    address."""
    name = outputs.section(pipeline).get("dashboardName") or outputs.name(pipeline, "dashboard", max_length=255)
    domain = "console.amazonaws.cn" if outputs.partition == "aws-cn" else "console.aws.amazon.com"
    return (f"{name} https://{outputs.region}.{domain}/cloudwatch/home?region={outputs.region}"
            f"#dashboards/dashboard/{name}")


def alarms_in_alarm(cloudwatch: Any, outputs: StackOutputs, pipelines: list[str]) -> list[dict[str, Any]]:
    prefixes = [f"{outputs.head}-{p}-" for p in pipelines]
    found: list[dict[str, Any]] = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=outputs.alarm_prefix(), StateValue="ALARM", AlarmTypes=["MetricAlarm"]):
        found += [a for a in page.get("MetricAlarms", [])
                  if a["AlarmName"].startswith(tuple(prefixes)) and a.get("StateValue") == "ALARM"]
    return found


def queues(outputs: StackOutputs, clients: Clients, pipeline: str) -> None:
    sqs, refs = clients("sqs"), []
    subscriber = lanes.subscriber_enabled(dict(outputs.section(pipeline)))
    for purpose in lanes.QUEUES[pipeline]:
        if (pipeline, purpose) in lanes.SUBSCRIBER_QUEUES and not subscriber:
            continue
        try:
            refs.append(resolve(sqs, outputs, pipeline, purpose))
        except QueueMissingError as error:
            if (pipeline, purpose) not in lanes.OPTIONAL_QUEUES:
                print(f"  {error}")
    ages = oldest_ages(clients("cloudwatch"), refs)
    for ref in refs:
        found = depth(sqs, ref)
        age = ages.get(ref.name)
        print(f"  {ref.name}: {found.visible} waiting, {found.in_flight} in flight, {found.delayed} delayed; "
              f"oldest {'-' if age is None else f'{age:.0f} s'}")


def oldest_ages(cloudwatch: Any, refs: list[QueueRef]) -> dict[str, float]:
    if not refs:
        return {}
    end = datetime.now(UTC)
    queries = [{"Id": f"q{i}", "MetricStat": {"Metric": {"Namespace": "AWS/SQS",
                                                          "MetricName": "ApproximateAgeOfOldestMessage",
                                                          "Dimensions": [{"Name": "QueueName", "Value": r.name}]},
                                              "Period": 60, "Stat": "Maximum"}} for i, r in enumerate(refs)]
    # The end reaches past now so the current, still open minute counts too.
    results = cloudwatch.get_metric_data(MetricDataQueries=queries, StartTime=end - AGE_WINDOW,
                                         EndTime=end + timedelta(minutes=1),
                                         ScanBy="TimestampDescending")["MetricDataResults"]
    ages = {}
    for result in results:
        if result.get("Values"):
            ages[refs[int(result["Id"][1:])].name] = float(result["Values"][0])
    return ages


def executions(outputs: StackOutputs, clients: Clients) -> None:
    machine = outputs.value("batchinf", "stateMachineArn")
    running = clients("stepfunctions").list_executions(stateMachineArn=machine, statusFilter="RUNNING",
                                                       maxResults=20).get("executions", [])
    print(f"  runs in progress: {len(running)}")
    for execution in running:
        print(f"    {execution['name']} started {execution['startDate']}")


def ingestion(outputs: StackOutputs, clients: Clients) -> None:
    where = target(outputs, clients)
    jobs = recent_jobs(clients("bedrock-agent"), where)
    print(f"  ingestion jobs of {where.knowledge_base_id}/{where.data_source_id}: {len(jobs)} recent")
    for job in jobs:
        print(f"    {job_line(job)}")
