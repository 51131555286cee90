"""The knowledge base and data source a stack's kbsync worker syncs (its KNOWLEDGE_BASE_ID and DATA_SOURCE_ID)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ops.aws import Clients
from ops.stack import OutputsError, StackOutputs

ACTIVE = ("STARTING", "IN_PROGRESS", "STOPPING")


@dataclass(frozen=True)
class Target:
    knowledge_base_id: str
    data_source_id: str


def target(outputs: StackOutputs, clients: Clients, *, knowledge_base_id: str | None = None,
           data_source_id: str | None = None) -> Target:
    if knowledge_base_id and data_source_id:
        return Target(knowledge_base_id, data_source_id)
    function = outputs.value("kbsync", "functionName")
    variables = clients("lambda").get_function_configuration(FunctionName=function).get(
        "Environment", {}).get("Variables", {})
    kb, ds = knowledge_base_id or variables.get("KNOWLEDGE_BASE_ID"), data_source_id or variables.get("DATA_SOURCE_ID")
    if not kb or not ds:
        raise OutputsError(f"{function} has no KNOWLEDGE_BASE_ID/DATA_SOURCE_ID: pass --knowledge-base-id and "
                           "--data-source-id")
    return Target(kb, ds)


def recent_jobs(agent: Any, where: Target, count: int = 5) -> list[dict[str, Any]]:
    return list(agent.list_ingestion_jobs(
        knowledgeBaseId=where.knowledge_base_id, dataSourceId=where.data_source_id,
        sortBy={"attribute": "STARTED_AT", "order": "DESCENDING"}, maxResults=count).get("ingestionJobSummaries", []))


def job_line(job: dict[str, Any]) -> str:
    stats = job.get("statistics") or {}
    counts = ", ".join(f"{k.removeprefix('numberOf')}={v}" for k, v in sorted(stats.items()) if v)
    return (f"{job.get('ingestionJobId')} {job.get('status')} started {job.get('startedAt')} "
            f"updated {job.get('updatedAt')}" + (f" ({counts})" if counts else ""))
