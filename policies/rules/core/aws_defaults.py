"""What AWS uses when a property is absent, so a rule judges the value the resource will really have.

Two kinds. Provider schema defaults (the Terraform schema's `Default`) are in the checked inputs and the planned
state under a real engine, so a rule only falls back to them for a record that lacks them (an exported or hand-made
stack); they must equal the provider's own, which the offline engine applies (`offline/tf_defaults.py`; a test
holds the two together). AWS service defaults are what the service does with a property the provider leaves unset.
"""

from __future__ import annotations

from typing import Final

# Provider schema defaults (terraform-provider-aws v6).
SQS_VISIBILITY_TIMEOUT_SECONDS: Final = 30  # aws:sqs/queue:Queue visibilityTimeoutSeconds
SQS_MESSAGE_RETENTION_SECONDS: Final = 345_600  # aws:sqs/queue:Queue messageRetentionSeconds (4 days)
LAMBDA_TIMEOUT_SECONDS: Final = 3  # aws:lambda/function:Function timeout
STATE_MACHINE_TYPE: Final = "STANDARD"  # aws:sfn/stateMachine:StateMachine type
# aws:lambda/function:Function reservedConcurrentExecutions: Lambda reports an unreserved function as -1.
UNRESERVED_CONCURRENCY: Final = -1

# AWS service defaults (the provider has none: the property is absent when unset).
SQS_MAPPING_BATCH_SIZE: Final = 10  # an SQS event source mapping's batch size
MAPPING_BATCHING_WINDOW_SECONDS: Final = 0
# A redrive policy without maxReceiveCount (SQS API reference, SetQueueAttributes: RedrivePolicy).
SQS_MAX_RECEIVE_COUNT: Final = 10
# Since April 2023 S3 turns on all four Block Public Access settings for every new bucket
# (https://aws.amazon.com/blogs/aws/heads-up-amazon-s3-security-changes-are-coming-in-april-of-2023/).
S3_NEW_BUCKET_BLOCKS_PUBLIC_ACCESS: Final = True

# (type token, property) -> the provider schema default above, for the test that holds them against the provider's.
SCHEMA_DEFAULTS: Final = {
    ("aws:sqs/queue:Queue", "visibilityTimeoutSeconds"): SQS_VISIBILITY_TIMEOUT_SECONDS,
    ("aws:sqs/queue:Queue", "messageRetentionSeconds"): SQS_MESSAGE_RETENTION_SECONDS,
    ("aws:lambda/function:Function", "timeout"): LAMBDA_TIMEOUT_SECONDS,
    ("aws:sfn/stateMachine:StateMachine", "type"): STATE_MACHINE_TYPE,
    ("aws:lambda/function:Function", "reservedConcurrentExecutions"): UNRESERVED_CONCURRENCY,
}
