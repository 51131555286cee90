"""Nothing named explicitly: the provider auto-names every resource; the program uses the names."""

import json

import pulumi
import pulumi_aws as aws

queue = aws.sqs.Queue("Jobs")
bucket = aws.s3.Bucket("Uploads")
role = aws.iam.Role("worker", assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": []}))
pulumi.export("names", pulumi.Output.all(queue.name, bucket.bucket, role.name))
