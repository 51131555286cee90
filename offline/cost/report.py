"""The estimate as a table per pipeline and a total, or as JSON; the reference architectures' tables beside it."""

from __future__ import annotations

from typing import Any

from offline.cost.estimators import Estimate
from offline.cost.lines import Bill, LineItem
from offline.cost.prices import PriceTable
from offline.cost.reference import EVENT_PROCESSING, EVENT_PROCESSING_M_LINES, FILE_INGESTION, price_file_scenario

WIDTH = 112


def text_report(estimate: Estimate, prices: PriceTable, volumes_label: str, reference: dict[str, Any]) -> str:
    out = [f"Monthly cost estimate: stack {estimate.stack} ({estimate.region}), volumes {volumes_label}, "
           f"prices of {prices.date} ({prices.source.name}; USD, before free tiers)", ""]
    for bill in estimate.bills:
        out += _bill_table(bill)
    out.append(f"{'Total':<{WIDTH - 14}}{estimate.total:>14,.2f}")
    unconfirmed = sorted({item.price.key for bill in estimate.bills for item in bill.lines
                          if item.price.confirmed == "unconfirmed" and item.cost > 0})
    if unconfirmed:
        out.append(f"Prices not confirmed for {estimate.region} (see {prices.source.name}): {', '.join(unconfirmed)}")
    out += ["", *_reference_text(reference, prices)]
    return "\n".join(out) + "\n"


def _bill_table(bill: Bill) -> list[str]:
    rows = [f"{bill.pipeline}", f"  {'service':<16}{'line':<34}{'quantity':>22}{'unit price':>26}{'USD':>12}"]
    for item in sorted(bill.lines, key=lambda i: (i.service, i.line)):
        rows.append(f"  {item.service:<16}{item.line[:33]:<34}{_quantity(item.quantity):>22}"
                    f"{_unit_price(item):>26}{item.cost:>12,.2f}")
    rows += [f"  {'total':<{WIDTH - 16}}{bill.total:>14,.2f}"]
    rows += [f"  not counted: {note}" for note in bill.notes]
    return [*rows, ""]


def _quantity(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3f}"


def _unit_price(item: LineItem) -> str:
    per = {1: "", 1_000: "1k ", 10_000: "10k ", 1_000_000: "1M "}.get(int(item.price.per), f"{item.price.per:g} ")
    price = item.price.price
    amount = f"{price:.10f}".rstrip("0") if price < 0.001 else f"{price:g}"
    return f"${amount} / {per}{_UNITS.get(item.price.unit, item.price.unit.split(' (')[0])}"


_UNITS = {"requests (64 KB chunks)": "requests", "events published (64 KB chunks)": "events",
          "PUT, COPY, POST, LIST requests": "requests", "GET and other requests": "requests",
          "custom metric-months (first 10,000)": "metric-month",
          "standard-resolution alarm metric-months": "alarm metric-month",
          "dashboard-months": "dashboard-month", "GB ingested (standard class)": "GB",
          "GB-month archived": "GB-month", "customer managed key-months": "key-month",
          "secret-months": "secret-month", "write request units": "WRU", "read request units": "RRU"}


def json_report(estimate: Estimate, prices: PriceTable, volumes_label: str,
                reference: dict[str, Any]) -> dict[str, Any]:
    return {
        "stack": estimate.stack, "region": estimate.region, "volumes": volumes_label,
        "prices": {"file": prices.source.name, "date": prices.date, "currency": "USD"},
        "pipelines": {bill.pipeline: {"lines": [_line_json(item) for item in bill.lines],
                                      "totalUsd": round(bill.total, 2), "notCounted": bill.notes}
                      for bill in estimate.bills},
        "totalUsd": round(estimate.total, 2),
        "reference": reference,
    }


def _line_json(item: LineItem) -> dict[str, Any]:
    return {"service": item.service, "line": item.line, "quantity": item.quantity, "unit": item.price.unit,
            "unitPrice": item.price.price, "per": item.price.per, "usd": round(item.cost, 4),
            "priceKey": item.price.key, "priceUrl": item.price.url, "priceConfirmed": item.price.confirmed,
            "basis": item.basis}


def _reference_text(reference: dict[str, Any], prices: PriceTable) -> list[str]:
    rows = ["Reference architecture 003 (event-driven AI processing), its cost table beside this stack's "
            "eventProcessing at the same volumes:",
            f"  {'sizing':<18}{'events/month':>14}{'tokens/event':>14}{'reference USD':>16}{'this stack USD':>16}"]
    totals = {row["profile"]: row["thisStackUsd"] for row in reference["eventProcessing"]}
    for sizing in EVENT_PROCESSING:
        rows.append(f"  {sizing.sizing:<18}{sizing.events:>14,}{sizing.tokens_per_event:>14,}"
                    f"{'~' + format(sizing.reference_usd, ',.0f'):>16}{totals.get(sizing.profile, 0.0):>16,.2f}")
    rows.append("  its M lines:")
    rows += [f"    {name:<12}~${usd:<8g}{why}".rstrip() for name, (usd, why) in EVENT_PROCESSING_M_LINES.items()]
    rows += ["", "Reference architecture 001 (100,000 JSON files a day into PostgreSQL), before and after, its own "
                 "workload figures priced with this table:",
             f"  {'scenario':<40}{'reference USD':>16}{'Lambda USD':>12}{'SQS USD':>10}  reference lines"]
    for scenario in FILE_INGESTION:
        priced = price_file_scenario(scenario, prices)
        rows.append(f"  {scenario.name:<40}{scenario.reference_usd:>16,.0f}{priced['lambda']:>12,.2f}"
                    f"{priced['sqs']:>10,.2f}  {scenario.reference_lines}")
    stack = reference["fileIngestionThisStackMedium"]
    rows.append(f"  {'this stack, fileIngestion at 3M files':<40}{'':>16}{stack.get('lambda', 0.0):>12,.2f}"
                f"{stack.get('sqs', 0.0):>10,.2f}  pipeline total {stack.get('total', 0.0):,.2f} (no database)")
    return rows
