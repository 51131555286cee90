"""A program that imports its sibling module, as programs split into files do."""

import pulumi_aws as aws
from naming import physical

aws.sqs.Queue("jobs", name=physical("jobs"), sqs_managed_sse_enabled=True)
