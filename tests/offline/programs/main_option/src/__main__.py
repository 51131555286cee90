"""A program kept in src/ (Pulumi.yaml `main`), importing its sibling."""

import pulumi_aws as aws
from buckets import bucket_name

aws.s3.Bucket("data", bucket=bucket_name())
