"""The one reviewed list of grants no recorded or derived request exercises, each with the reason it is granted.

Keyed by (role's logical name, statement Sid, action, how the granted resource ends), the same in every stack.
What AWS itself does with a role (Lambda writing logs and traces, polling event sources, delivering failed
invocations, managing a VPC function's network interfaces; Step Functions running a Distributed Map; Bedrock
running a job) is not listed here: the check derives those requests from the stack (`uses.py`) and holds them
like the handlers'.
"""

from __future__ import annotations

UNEXERCISED: dict[tuple[str, str, str, str], str] = {
    ("fileingest-worker-role", "ReadDatasetPrefixes", "s3:GetObject", "/input/customers/*"):
        "an object announced without a versionId (a bucket without versioning) is read as its current version, "
        "with s3:GetObject; every dataset prefix takes the same path, which the tests exercise under input/orders/ "
        "(tests/handlers/file_ingestion/test_file_ingestion_bad_actors.py::"
        "test_an_object_deleted_before_its_batch_is_skipped_not_retried)",
}
