"""Small programs that build one block each, for the mocked component tests."""

from __future__ import annotations

import pulumi

from components.blocks.alarm_topic import AlarmTopic
from components.blocks.iam import AwsEnv, Statement
from components.blocks.naming import Naming
from components.blocks.packaging import FunctionCode
from components.blocks.queue import QueueProducer, QueueWithDlq
from components.blocks.worker import QueueWorker
from components.config import QueueSettings, WorkerSettings

NAMING = Naming("ai-pipelines", "test", "demo", owner="platform")


def fake_code() -> FunctionCode:
    """Code arguments without building an archive: the blocks never look inside it."""
    return FunctionCode(code=pulumi.AssetArchive({"demo/app.py": pulumi.StringAsset("def handler(e, c): ...")}),
                        source_code_hash="c2hh", handler="demo.app.handler", runtime="python3.13",
                        architectures=["arm64"])


def worker_program(settings: WorkerSettings | None = None, queue_settings: QueueSettings | None = None) -> None:
    settings = settings or WorkerSettings(timeout_seconds=30, memory_mb=256, batch_size=50, batching_window_seconds=5,
                                          reserved_concurrency=4, max_concurrency=3)
    env = AwsEnv.lookup()
    topic = AlarmTopic(NAMING, env, emails=["oncall@example.com"])
    queue = QueueWithDlq(NAMING, env, "jobs", settings=queue_settings or QueueSettings(max_receive_count=5),
                         visibility_timeout_seconds=settings.visibility_timeout_seconds, alarm_topic_arn=topic.arn,
                         producers=[QueueProducer("S3Sends", "s3.amazonaws.com", env.s3_bucket("demo-bucket"))])
    QueueWorker(NAMING, env, "worker", queue=queue, code=fake_code(), settings=settings, alarm_topic_arn=topic.arn,
                log_retention_days=30,
                statements=[Statement("ReadDocs", ["s3:GetObject"], [env.s3_objects("demo-bucket", "docs/")])],
                environment={"MODE": "test"})
