"""Schema migrations of the file-ingestion database, and the function that applies them inside the VPC.

``migrations/NNNN_<name>.sql`` are applied in order, each in its own transaction, and recorded in
``schema_migrations`` with their checksum; an applied migration that changed since is refused, never re-applied.
The same ``runner`` applies them from the Lambda function ``file_ingestion_migrate.app.handler`` (invoked by
``pulumi up`` whenever the migrations' checksum changes), from the tests, and locally (``make migrate``, which runs
``python -m file_ingestion_migrate``).
"""
