"""Which documents the bucket holds now (`stored`): a listing S3 refuses or cannot answer stops the batch with an
error naming the bucket and the cause (the batch fails and SQS delivers it again), and a key outside the document
prefix is taken as absent without asking S3."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from kb_sync import stored
from kb_sync.config import Settings
from kb_sync.exceptions import BucketListingError
from kb_sync.messages import DocumentChange
from tests.handlers.kb_sync.names import BUCKET, ENVIRONMENT, PREFIX, REGION

SETTINGS = Settings.from_env(ENVIRONMENT)
CHANGE = DocumentChange(kind="created", uri=f"s3://{BUCKET}/{PREFIX}handbook.pdf")


def test_a_refused_listing_names_the_bucket_and_s3_s_code() -> None:
    client = boto3.client("s3", region_name=REGION)
    with Stubber(client) as stubber:
        # SlowDown: a code S3's model does not declare, so the error's class is ClientError and only its code names it
        stubber.add_client_error("list_objects_v2", service_error_code="SlowDown", http_status_code=503,
                                 expected_params={"Bucket": BUCKET, "Prefix": f"{PREFIX}handbook.pdf", "MaxKeys": 1})
        with pytest.raises(BucketListingError, match=f"still exists in {BUCKET} \\(ListObjectsV2: SlowDown\\)"):
            stored.as_stored(client, SETTINGS, [CHANGE])


def test_an_unreachable_bucket_names_the_failure() -> None:
    client = boto3.client("s3", region_name=REGION)

    def unreachable(**_: object) -> None:
        raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    client.meta.events.register("before-call.s3.ListObjectsV2", unreachable)
    with pytest.raises(BucketListingError, match="ListObjectsV2: EndpointConnectionError"):
        stored.as_stored(client, SETTINGS, [CHANGE])


def test_a_key_outside_the_document_prefix_is_absent_without_asking() -> None:
    client = boto3.client("s3", region_name=REGION)
    outside = DocumentChange(kind="created", uri=f"s3://{BUCKET}/elsewhere/handbook.pdf")
    with Stubber(client):  # no response queued: any call would fail the test
        assert stored.as_stored(client, SETTINGS, [outside]) == [DocumentChange(kind="removed", uri=outside.uri)]
