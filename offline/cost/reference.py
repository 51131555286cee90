"""The reference architectures' own cost tables (/work/shared/reference), beside this estimate's figures.

003 (event-driven AI processing) sizes S/M/L by events a month and tokens per event; the profiles use exactly those
volumes, so its rows sit beside the eventProcessing bill at each profile. 001 (100,000 JSON files a day into
PostgreSQL) states a monthly cost before (a Lambda per file) and after (filtered notifications, SQS, batches of
100); its own workload figures are priced here with this price table, beside the fileIngestion bill at the medium
profile (3,000,000 files a month).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from offline.cost.prices import PriceTable

DAYS = 30  # the reference's "per day" figures, over a month


@dataclass(frozen=True)
class EventSizing:
    sizing: str
    profile: str
    events: int
    tokens_per_event: int
    reference_usd: float


EVENT_PROCESSING = (
    EventSizing("S - pilot", "small", 50_000, 800, 80),
    EventSizing("M - product", "medium", 1_000_000, 1_200, 1_100),
    EventSizing("L - high volume", "large", 25_000_000, 1_500, 28_000),
)
# 003's M breakdown, USD: its own inputs for each line.
EVENT_PROCESSING_M_LINES = {
    "EventBridge": (2, "1M events x $1/M x 2 buses"),
    "SQS": (0.40, "1M x 2 (send + receive) = 2M requests, beyond the free tier"),
    "Lambda": (12, "1M invocations x 1.5 s x 512 MB = 750k GB-s"),
    "Bedrock": (900, "1M x 1.2k tokens = 1.2B tokens, 60/40 input/output, Claude Haiku"),
    "DynamoDB": (50, "1M reads + 2M writes + storage"),
    "CloudWatch": (50, ""),
    "Misc": (85, ""),
}


@dataclass(frozen=True)
class FileScenario:
    name: str
    reference_usd: float
    reference_lines: str
    invocations: float  # a month
    seconds: float
    memory_mb: float
    sqs_requests: float


# 001: 100,000 files a day, 512 MB functions (Python 3.11, no architecture stated: x86_64, Lambda's default).
FILE_INGESTION = (
    FileScenario("before: a Lambda per file", 3_200, "Lambda 2,800 + RDS 400", 100_000 * DAYS, 4.2, 512, 0),
    # after: 1,000 invocations a day of 100 files at 0.6 s per file; SQS: a send per file, a receive and a
    # delete per batch
    FileScenario("after: filtered, SQS, batches of 100", 520, "Lambda 90 + RDS 420 + SQS 10", 1_000 * DAYS, 60, 512,
                 100_000 * DAYS + 2 * 1_000 * DAYS),
)


def price_file_scenario(scenario: FileScenario, prices: PriceTable) -> dict[str, float]:
    """The scenario's Lambda and SQS lines at this price table (RDS is outside any stack here)."""
    gb_seconds = scenario.invocations * scenario.seconds * scenario.memory_mb / 1024
    lambda_usd = prices["lambda.requests"].cost(scenario.invocations) + \
        prices["lambda.gb_seconds.x86_64"].cost(gb_seconds)
    return {"lambda": lambda_usd, "sqs": prices["sqs.requests"].cost(scenario.sqs_requests),
            "gbSeconds": gb_seconds}


def reference_json(event_totals: dict[str, float], file_bill: dict[str, float], prices: PriceTable) -> dict[str, Any]:
    return {
        "eventProcessing": [
            {"sizing": s.sizing, "profile": s.profile, "eventsPerMonth": s.events, "tokensPerEvent": s.tokens_per_event,
             "referenceUsd": s.reference_usd, "thisStackUsd": round(event_totals.get(s.profile, 0.0), 2)}
            for s in EVENT_PROCESSING],
        "eventProcessingMediumLines": {name: {"referenceUsd": usd, "inputs": why}
                                       for name, (usd, why) in EVENT_PROCESSING_M_LINES.items()},
        "fileIngestion": [
            {"scenario": s.name, "referenceUsd": s.reference_usd, "referenceLines": s.reference_lines,
             **{f"{k}AtThesePrices": round(v, 2) for k, v in price_file_scenario(s, prices).items()}}
            for s in FILE_INGESTION],
        "fileIngestionThisStackMedium": {k: round(v, 2) for k, v in file_bill.items()},
    }
