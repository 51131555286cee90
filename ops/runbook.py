"""Every alarm the stack creates, what it means and the command that answers it (README, "Runbook").

Alarm names are ``<project>-<stack>-<pipeline>-<purpose>``; ``ENTRIES`` is keyed by (pipeline, purpose).
"""

from __future__ import annotations

from typing import NamedTuple

from ops.stack import PIPELINES


class Entry(NamedTuple):
    meaning: str
    command: str


def _dlq(queue: str, pipeline: str) -> Entry:
    return Entry(f"a message of {queue} failed maxReceiveCount times and was dead-lettered",
                 f"redrive --pipeline {pipeline} --lane {queue}-dlq")


def _undelivered(rule: str, pipeline: str) -> Entry:
    return Entry(f"EventBridge gave up delivering an event of rule {rule} to its queue",
                 f"redrive --pipeline {pipeline} --lane {rule}-undelivered")


def _age(queue: str, pipeline: str) -> Entry:
    return Entry(f"the oldest message in {queue} waits longer than its pipeline allows: the consumer is failing, "
                 "throttled or disabled", f"status --pipeline {pipeline}")


def _function(function: str, pipeline: str, *, rate: bool = False) -> dict[tuple[str, str], Entry]:
    errors = (Entry(f"more than the configured share of the {function} function's invocations failed in the period "
                    "(errors in its log)", f"status --pipeline {pipeline}") if rate
              else Entry(f"the {function} function failed (errors in its log)", f"status --pipeline {pipeline}"))
    return {(pipeline, f"{function}-{'error-rate' if rate else 'errors'}"): errors,
            (pipeline, f"{function}-throttles"): Entry(f"Lambda throttled the {function} function (reserved "
                                                       "concurrency reached)", f"status --pipeline {pipeline}")}


def _backlog(queue: str, pipeline: str) -> Entry:
    return Entry(f"more messages than the backlog threshold have waited in {queue} for five minutes: the consumer "
                 "cannot keep up, is failing or is disabled", f"status --pipeline {pipeline}")


ENTRIES: dict[tuple[str, str], Entry] = {
    ("kbsync", "changes-dlq-depth"): _dlq("changes", "kbsync"),
    ("kbsync", "changes-age"): _age("changes", "kbsync"),
    ("kbsync", "failed-runs-depth"): Entry("a scheduled sync failed inside the worker after Lambda's retries "
                                           "(its record says which tick and why); the next tick syncs anyway",
                                           "resync"),
    **_function("worker", "kbsync"),
    ("kbsync", "failed-ingestion-jobs"): Entry("an ingestion job ended FAILED or STOPPED, or was still running after "
                                               "maxJobChecks checks (the worker's log names it and its reasons)",
                                               "status --pipeline kbsync"),
    ("kbsync", "failed-ingestion-documents"): Entry("an ingestion job completed with failed documents (the worker's "
                                                    "log names the job)", "status --pipeline kbsync"),
    ("kbsync", "failed-direct-documents"): Entry("directly ingested documents failed past their retries; an "
                                                 "ingestion job was requested for them (the log names them by "
                                                 "digest)", "status --pipeline kbsync"),
    ("eventproc", "work-dlq-depth"): _dlq("work", "eventproc"),
    ("eventproc", "work-age"): _age("work", "eventproc"),
    ("eventproc", "work-backlog"): _backlog("work", "eventproc"),
    ("eventproc", "intake-undelivered-depth"): _undelivered("intake", "eventproc"),
    ("eventproc", "subscriber-dlq-depth"): _dlq("subscriber", "eventproc"),
    ("eventproc", "subscriber-age"): _age("subscriber", "eventproc"),
    ("eventproc", "completed-undelivered-depth"): _undelivered("completed", "eventproc"),
    ("eventproc", "model-throttles"): Entry("Bedrock throttled the model: the worker's reserved concurrency "
                                            "exceeds the model's quota", "status --pipeline eventproc"),
    ("eventproc", "invalid-answers"): Entry("the model gave answers that failed the task's schema or labels; those "
                                            "items are retried, then dead-lettered, never stored",
                                            "status --pipeline eventproc"),
    # The per-function choice of a count or a rate is explained where each pipeline builds its functions.
    **_function("worker", "eventproc", rate=True),
    ("fileingest", "incoming-dlq-depth"): _dlq("incoming", "fileingest"),
    ("fileingest", "incoming-age"): _age("incoming", "fileingest"),
    ("fileingest", "incoming-backlog"): _backlog("incoming", "fileingest"),
    **_function("worker", "fileingest", rate=True),
    ("batchinf", "failures-dlq-depth"): _dlq("failures", "batchinf"),
    ("batchinf", "failures-age"): Entry("a record has waited in the failure lane for a day: nobody replayed it",
                                        "replay-failures --run RUN_ID"),
    ("batchinf", "completions-dlq-depth"): _dlq("completions", "batchinf"),
    ("batchinf", "completions-age"): _age("completions", "batchinf"),
    ("batchinf", "job-events-undelivered-depth"): _undelivered("job-events", "batchinf"),
    ("batchinf", "run-endings-dlq-depth"): _dlq("run-endings", "batchinf"),
    ("batchinf", "run-endings-age"): _age("run-endings", "batchinf"),
    ("batchinf", "run-endings-undelivered-depth"): _undelivered("run-endings", "batchinf"),
    ("batchinf", "runs-failed"): Entry("a run failed, timed out or was aborted", "status --pipeline batchinf"),
    ("batchinf", "model-throttles"): Entry("Bedrock throttled the model: onDemandConcurrency exceeds the model's "
                                           "on-demand quota", "status --pipeline batchinf"),
    ("batchinf", "output-mismatches"): Entry("a batch job's output disagreed with its shard or manifest",
                                             "status --pipeline batchinf"),
    **{key: entry for function in ("sharder", "submitter", "completion", "reconciler", "finalizer", "run-ended")
       for key, entry in _function(function, "batchinf").items()},
    **_function("sync-worker", "batchinf", rate=True),
}


def lookup(head: str, alarm_name: str) -> tuple[str, Entry] | None:
    """(pipeline, entry) of the alarm named ``alarm_name`` in the stack whose names start with ``head``."""
    rest = alarm_name.removeprefix(f"{head}-")
    for pipeline in PIPELINES:
        entry = ENTRIES.get((pipeline, rest.removeprefix(f"{pipeline}-")))
        if rest.startswith(f"{pipeline}-") and entry is not None:
            return pipeline, entry
    return None
