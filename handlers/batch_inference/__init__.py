"""Large-scale batch inference: shard a JSONL corpus, run it through Bedrock batch jobs (mode A) or synchronous
Converse fan-out (mode B), join results on recordId, isolate failures, announce completion.

Each Lambda function has its own entry point in this package (``batch_inference.<module>.handler``); the pure
cores (``records``, ``sharding``, ``joining``, ``backoff``) hold the logic and do no AWS I/O.
"""
