"""The whole stack: shared alarm topic, the pipelines the stack enables, one notification set per bucket."""

from __future__ import annotations

import pulumi

from components.blocks.access_logs import AccessLogs
from components.blocks.alarm_topic import AlarmTopic
from components.blocks.iam import AwsEnv
from components.blocks.key import StackKey
from components.blocks.naming import Naming
from components.blocks.notifications import BucketNotifications
from components.blocks.packaging import function_code
from components.config import StackConfig, load_stack_config, refuse_example_values
from components.pipelines.batch_inference import BatchInference, handler_code
from components.pipelines.event_processing import HANDLER_PACKAGE as EVENT_PROCESSOR_PACKAGE
from components.pipelines.event_processing import EventProcessor
from components.pipelines.file_ingestion import HANDLER_PACKAGE as FILE_INGESTION_PACKAGE
from components.pipelines.file_ingestion import MIGRATION_PACKAGE as FILE_INGESTION_MIGRATIONS
from components.pipelines.file_ingestion import FileIngestion
from components.pipelines.knowledge_base_sync import HANDLER_PACKAGE as KB_SYNC_PACKAGE
from components.pipelines.knowledge_base_sync import BatchResults, KnowledgeBaseSync


def build_stack(config: StackConfig | None = None) -> None:
    """Build every enabled pipeline. Config is validated first, so bad config registers nothing."""
    config = config or load_stack_config()
    env = AwsEnv.lookup()
    refuse_example_values(config, env.account_id, pulumi.get_stack())
    naming = Naming(pulumi.get_project(), pulumi.get_stack(), "shared", owner=config.owner)
    key = StackKey(naming, env, readers=config.key_readers) if config.customer_managed_keys else None
    try:
        _build(config, env, naming, key)
    finally:
        # The key's policy lists what every pipeline asked of it; the key waits for it (even after a failure, so the
        # program ends instead of waiting on it).
        if key is not None:
            key.seal()


def _build(config: StackConfig, env: AwsEnv, naming: Naming, key: StackKey | None) -> None:
    topic = AlarmTopic(naming, env, emails=config.alarms.emails, key=key)
    notifications = BucketNotifications()
    access_logs = AccessLogs(naming, env, settings=config.access_logs, protect=config.protect_data)
    pulumi.export("alarmTopicArn", topic.arn)

    def code(package: str):  # type: ignore[no-untyped-def]
        return function_code(package, architecture=config.lambda_.architecture,
                             python_version=config.lambda_.python_version)

    # Built first: the knowledge-base sync may subscribe to its result bus (knowledgeBaseSync.batchResults).
    batch = config.batch_inference
    inference = None
    if batch is not None and batch.enabled:
        inference = BatchInference(naming.child("batchinf"), env, batch,
                                   code=handler_code(config.lambda_.architecture, config.lambda_.python_version),
                                   alarm_topic_arn=topic.arn, log_retention_days=config.log_retention_days,
                                   protect_data=config.protect_data, key=key, access_logs=access_logs)
        pulumi.export("batchInference", {"stateMachineArn": inference.state_machine.arn,
                                         "inputBucket": inference.input_bucket.bucket_name,
                                         "corpusPrefix": batch.corpus_prefix,
                                         "outputBucket": inference.output_bucket.bucket_name,
                                         "resultBusName": inference.result_bus.bus_name,
                                         "resultBusArn": inference.result_bus.arn,
                                         "failureLaneUrl": inference.failure_lane.url,
                                         "dashboardName": inference.dashboard.dashboard_name})
    batch_results = (BatchResults(inference.result_bus, batch.result_source)
                     if inference is not None and batch is not None else None)
    kb = config.knowledge_base_sync
    if kb is not None and kb.enabled:
        pipeline = KnowledgeBaseSync(naming.child("kbsync"), env, kb, code=code(KB_SYNC_PACKAGE),
                                     alarm_topic_arn=topic.arn, notifications=notifications,
                                     log_retention_days=config.log_retention_days, protect_data=config.protect_data,
                                     batch_results=batch_results, key=key, access_logs=access_logs)
        pulumi.export("knowledgeBaseSync", {"queueUrl": pipeline.queue.url,
                                            "functionName": pipeline.worker.function.name,
                                            "bucketName": pipeline.bucket_name,
                                            "dashboardName": pipeline.dashboard.dashboard_name})
    events = config.event_processing
    if events is not None and events.enabled:
        processor = EventProcessor(naming.child("eventproc"), env, events, code=code(EVENT_PROCESSOR_PACKAGE),
                                   alarm_topic_arn=topic.arn, log_retention_days=config.log_retention_days,
                                   protect_data=config.protect_data, key=key)
        pulumi.export("eventProcessing", {"inputBusName": processor.input_bus.bus_name,
                                          "inputBusArn": processor.input_bus.arn,
                                          "resultBusName": processor.result_bus.bus_name,
                                          "resultBusArn": processor.result_bus.arn,
                                          "workQueueUrl": processor.queue.url,
                                          "functionName": processor.worker.function.name,
                                          "idempotencyTable": processor.idempotency.table_name,
                                          "resultsTable": processor.results.table_name,
                                          "subscriberQueueUrl": (processor.subscriber_queue.url
                                                                 if processor.subscriber_queue else None),
                                          "dashboardName": processor.dashboard.dashboard_name})
    files = config.file_ingestion
    if files is not None and files.enabled:
        ingestion = FileIngestion(naming.child("fileingest"), env, files, code=code(FILE_INGESTION_PACKAGE),
                                  migration_code=code(FILE_INGESTION_MIGRATIONS), alarm_topic_arn=topic.arn,
                                  notifications=notifications, log_retention_days=config.log_retention_days,
                                  protect_data=config.protect_data, key=key, access_logs=access_logs)
        pulumi.export("fileIngestion", {"bucketName": ingestion.bucket_name, "queueUrl": ingestion.queue.url,
                                        "dlqUrl": ingestion.queue.dlq_url,
                                        "functionName": ingestion.worker.function.name,
                                        "migrationFunctionName": ingestion.migrations.function.name,
                                        "databaseSecretId": ingestion.secret_id,
                                        "dashboardName": ingestion.dashboard.dashboard_name})
    notifications.build()
    access_logs.build()
    if access_logs.bucket is not None:
        pulumi.export("accessLogBucket", access_logs.bucket.bucket_name)
