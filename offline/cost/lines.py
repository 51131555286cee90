"""A pipeline's bill: line items (service, line, quantity, price) and the lines every pipeline shares: a Lambda
function's requests, GB-seconds and logs, SQS event-source polling, alarms, dashboards and custom metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from offline.cost.inventory import DAYS_PER_MONTH, HOURS_PER_MONTH, Function, Pipeline
from offline.cost.prices import Price, PriceTable
from offline.cost.volumes import Shared

KB_PER_GB = 1024.0 * 1024.0
LONG_POLL_SECONDS = 20  # the queues' receiveWaitTimeSeconds, which the Lambda event source's pollers use


@dataclass
class LineItem:
    service: str
    line: str
    quantity: float
    price: Price
    basis: list[str] = field(default_factory=list)  # how the quantity was counted, one entry per contribution

    @property
    def cost(self) -> float:
        return self.price.cost(self.quantity)


@dataclass
class Bill:
    pipeline: str
    prices: PriceTable
    shared: Shared
    items: dict[tuple[str, str], LineItem] = field(default_factory=dict)
    invoked: dict[str, Function] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, service: str, line: str, price: str | Price, quantity: float, basis: str = "") -> None:
        resolved = self.prices[price] if isinstance(price, str) else price
        item = self.items.setdefault((service, line), LineItem(service, line, 0.0, resolved))
        item.quantity += quantity
        if basis:
            item.basis.append(basis)

    @property
    def lines(self) -> list[LineItem]:
        return list(self.items.values())

    @property
    def total(self) -> float:
        return sum(item.cost for item in self.items.values())

    def invoke(self, function: Function, invocations: float, seconds: float, log_kb: float) -> None:
        """A function's requests, GB-seconds (by its architecture) and log ingestion and storage."""
        if invocations <= 0:
            return
        self.invoked[function.name] = function
        arch = function.architecture
        gb_seconds = invocations * seconds * function.memory_mb / 1024
        self.add("Lambda", f"requests ({arch})", "lambda.requests", invocations,
                 f"{function.name}: {invocations:,.0f}")
        self.add("Lambda", f"GB-seconds ({arch})", f"lambda.gb_seconds.{arch}", gb_seconds,
                 f"{function.name}: {invocations:,.0f} x {seconds:g} s x {function.memory_mb:g} MB")
        self.log(function, invocations * log_kb / KB_PER_GB)

    def log(self, function: Function, ingested_gb: float) -> None:
        retention = function.log_retention_days or 3653  # a group without retention keeps everything
        held_days = min(retention, self.shared.storage_months * DAYS_PER_MONTH)
        self.add("CloudWatch", "logs ingestion", "cloudwatch.logs_ingestion", ingested_gb, function.name)
        self.add("CloudWatch", "logs storage", "cloudwatch.logs_storage", ingested_gb * held_days / DAYS_PER_MONTH,
                 f"{function.name}: {held_days:g} days held")

    def tokens(self, model: str, input_tokens: float, output_tokens: float, *, batch: bool) -> None:
        price = self.prices.model(model)
        factor = self.prices.batch_discount if batch else 1.0
        mode = "batch" if batch else "on demand"
        for kind, per_token in (("input", price.input), ("output", price.output)):
            quantity = input_tokens if kind == "input" else output_tokens
            line = Price(key=f"bedrock.{price.model}.{kind}", price=per_token * factor, per=price.per,
                         unit=f"{kind} tokens", url=price.url, confirmed=price.confirmed)
            self.add("Bedrock", f"{kind} tokens, {mode}", line, quantity, price.model)

    def fixed(self, pipeline: Pipeline) -> None:
        """What the pipeline's resources cost every month: alarms, dashboards, custom metrics, idle queue polling,
        interface endpoints, secrets and keys."""
        if pipeline.alarms:
            self.add("CloudWatch", "alarms", "cloudwatch.alarms", pipeline.alarm_metrics,
                     f"{pipeline.alarms} alarms reading {pipeline.alarm_metrics} metrics (metric math: one each)")
        if pipeline.dashboards:
            self.add("CloudWatch", "dashboards", "cloudwatch.dashboards", pipeline.dashboards)
        metrics = sum(len(function.custom_metrics) for function in self.invoked.values())
        if metrics:
            self.add("CloudWatch", "custom metrics", "cloudwatch.metrics", metrics,
                     ", ".join(f"{f.name}: {len(f.custom_metrics)}" for f in self.invoked.values() if f.custom_metrics))
        if pipeline.event_sources:
            polls = pipeline.event_sources * self.shared.poller_count * HOURS_PER_MONTH * 3600 / LONG_POLL_SECONDS
            self.add("SQS", "requests", "sqs.requests", polls,
                     f"event source polling: {pipeline.event_sources} x {self.shared.poller_count} pollers x "
                     f"one {LONG_POLL_SECONDS} s receive")
        if pipeline.secrets:
            self.add("Secrets Manager", "secrets", "secretsmanager.secrets", pipeline.secrets)
        if pipeline.interface_endpoint_zones:
            self.add("VPC", "interface endpoint hours", "vpc.interface_endpoint_hours",
                     pipeline.interface_endpoint_zones * HOURS_PER_MONTH,
                     f"{pipeline.interface_endpoint_zones} endpoint zone(s) x {HOURS_PER_MONTH:g} h")
        if pipeline.kms_keys:
            self.add("KMS", "keys", "kms.keys", pipeline.kms_keys)
