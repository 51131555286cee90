"""High-frequency JSON file ingestion: S3 notifications -> SQS -> batches of ~100 files -> PostgreSQL.

Lambda's entry point is ``file_ingestion.app.handler``. The pure core decides what each message and each file
means: ``events`` (which objects a message names, or why it is skipped or rejected), ``datasets`` and ``records``
(the declared data contract: per input prefix a record model, a table and its key columns) and ``parse`` (a file's
bytes to validated records). ``reader`` (S3), ``load`` (PostgreSQL) and ``clients`` are the only modules that do
I/O, and ``app`` wires them together with Powertools. The schema comes from the migrations shipped in
``file_ingestion_migrate``; this package never creates a table of the schema.
"""
