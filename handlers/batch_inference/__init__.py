"""Large-scale batch inference: shard a JSONL corpus, run it through Bedrock batch jobs (mode A) or synchronous
Converse fan-out (mode B), join results on recordId, isolate failures, announce completion. Both modes send each
record as the same Converse request, built once by the sharder from the prompt template (batch jobs with
``modelInvocationType: Converse``), or, with REQUEST_FORMAT native, as the model's own InvokeModel body.

Each Lambda function has its own entry point in this package (``batch_inference.<module>.handler``); the pure
cores hold the logic and do no AWS I/O. The map, in the order of a run, with the state each module owns:

============  ================  ==================================================================================
stage         module            role, and the state it owns
============  ================  ==================================================================================
shard         ``sharder``       the first Task: streams the corpus into shards (pure core ``sharding``, records
                                from ``records``); owns the shard objects, ``shards.json`` and the sharder's
                                bad-line markers in the ledger.
submit        ``submitter``     mode A, per shard: creates the shard's batch job (name and token from ``jobs``);
                                owns the shard's jobs-table item (task token, job ARN, the switch to synchronous
                                calls past a deadline: ``deadline``).
wait          ``resume``        the mode A child waits on its task token (``waitForTaskToken`` with a heartbeat);
                                ``resume`` ends the wait from the shard's jobs-table item (success with its counts,
                                or the job's failure); owns no state of its own.
complete      ``completion``    a job's end (its event or the reconciler's): joins output and shard on recordId
                                (pure core ``joining``), settles the shard under its settling lease, resumes the
                                child (``resume``); owns the shard's status and counts and its results object.
              ``sync_worker``   mode B, per batch: Converse calls with `common.retry` (``backoff``); owns its
                                batch's results object.
settle        ``settle``        how every unit ends: its records claimed in the ledger, duplicates and failures to
                                the failure lane (``lane``); the ledger (``ledger``) owns each record's owner,
                                outcome and lane mark.
finalize      ``finalizer``     the last Task: adds up the children's counts (``usage`` for tokens and cost),
                                settles failed children's shards, writes the run's manifest and publishes
                                ``BatchRunCompleted`` under a publication claim; owns the manifest and the claims
                                (``run#<runId>#<ending>`` items of the jobs table).
              ``run_ended``     an unsuccessful ending (Step Functions' status-change event): the same manifest and
                                event through ``finalizer``; owns nothing of its own.
reconcile     ``reconciler``    on a schedule, for what best-effort events miss: heartbeats to children whose jobs
                                still run, re-queues a finished job or an unpublished run ending; owns no state
                                (reads the jobs table, Bedrock's and Step Functions' listings).
============  ================  ==================================================================================

Shared pieces: ``jobs`` (the jobs table: shard items, settling leases and publication claims, all with
`common.claim`), ``config`` (each function's settings), ``tasks`` (input shapes), ``messages`` (SQS batches),
``clients``, ``threads``, ``exceptions``.
"""
