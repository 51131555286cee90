"""Large-scale batch inference: shard a JSONL corpus, run it through Bedrock batch jobs (mode A) or synchronous
Converse fan-out (mode B), join results on recordId, isolate failures, announce completion. Both modes send each
record as the same Converse request, built once by the sharder from the prompt template (batch jobs with
``modelInvocationType: Converse``), or, with REQUEST_FORMAT native, as the model's own InvokeModel body.

Each Lambda function has its own entry point in this package (``batch_inference.<module>.handler``); the pure
cores (``records``, ``sharding``, ``joining``, ``backoff``) hold the logic and do no AWS I/O.
"""
