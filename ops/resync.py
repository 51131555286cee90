"""``resync``: start an ingestion job of the stack's knowledge base now (``StartIngestionJob``).

Bedrock runs one ingestion job per data source at a time and answers a second with ``ConflictException``: then
the running job is shown and nothing is started (exit code 3). The worker's own follow-ups retry such a conflict
later; by hand, wait for the job to end and run ``resync`` again if changes were made after it started.
"""

from __future__ import annotations

import uuid

from ops.aws import Clients
from ops.confirm import confirmed
from ops.knowledge_base import ACTIVE, job_line, recent_jobs, target
from ops.stack import StackOutputs


def run(outputs: StackOutputs, clients: Clients, *, knowledge_base_id: str | None, data_source_id: str | None,
        dry_run: bool, yes: bool) -> int:
    where = target(outputs, clients, knowledge_base_id=knowledge_base_id, data_source_id=data_source_id)
    agent = clients("bedrock-agent")
    jobs = recent_jobs(agent, where, 3)
    print(f"knowledge base {where.knowledge_base_id}, data source {where.data_source_id}; latest jobs:")
    for job in jobs or [{"ingestionJobId": "(none)"}]:
        print(f"  {job_line(job)}" if job.get("status") else "  (none)")
    if dry_run:
        print("dry run: would start an ingestion job" + (" (one is running: Bedrock would refuse)"
                                                         if any(j.get("status") in ACTIVE for j in jobs) else ""))
        return 0
    if not confirmed(f"Start an ingestion job of {where.knowledge_base_id}/{where.data_source_id}", yes=yes):
        print("cancelled")
        return 1
    try:
        job = agent.start_ingestion_job(knowledgeBaseId=where.knowledge_base_id, dataSourceId=where.data_source_id,
                                        clientToken=f"ops-resync-{uuid.uuid4()}",
                                        description="started by hand (python -m ops resync)")["ingestionJob"]
    except agent.exceptions.ConflictException as error:
        print(f"not started: an ingestion job is already running ({error.response['Error'].get('Message', '')})")
        for running in [j for j in recent_jobs(agent, where, 5) if j.get("status") in ACTIVE][:1]:
            print(f"  running: {job_line(running)}")
        print("run resync again after it ends if documents changed after it started")
        return 3
    print(f"started ingestion job {job['ingestionJobId']} ({job['status']}); follow it with `python -m ops status "
          f"--pipeline kbsync`")
    return 0
