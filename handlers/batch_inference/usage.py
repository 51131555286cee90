"""Tokens and cost of a run. Pure.

Tokens come from Bedrock: a batch job's ``manifest.json.out`` (``inputTokenCount``, ``outputTokenCount``: the
job's own totals, what the job is billed for) and, in mode B, each Converse answer's ``usage`` (``inputTokens``,
``outputTokens``). A job output without a manifest falls back to the ``usage`` of its success lines (Converse's, or
Anthropic's ``input_tokens`` / ``output_tokens`` in a native body).

Cost is an estimate from the model's on-demand prices (the finalizer's TOKEN_PRICES, USD per million tokens) and
the batch discount: tokens processed by batch jobs at batch prices, tokens of synchronous calls at on-demand
prices (``estimatedUsd``), and all of the run's tokens at either price (``atBatchPricesUsd``,
``atOnDemandPricesUsd``), so a run shows what batch saved or what a switch to mode B cost.

>>> prices = Prices(input_per_million=0.25, output_per_million=1.25, batch_discount=0.5, model="m")
>>> cost({"batch": Tokens(1_000_000, 200_000), "onDemand": Tokens(0, 0)}, prices)["estimatedUsd"]
0.25
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

INPUT, OUTPUT = "inputTokens", "outputTokens"
LANES = ("batch", "onDemand")


@dataclass(frozen=True)
class Tokens:
    input: int = 0
    output: int = 0

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(self.input + other.input, self.output + other.output)

    def as_counts(self) -> dict[str, int]:
        return {INPUT: self.input, OUTPUT: self.output}

    @classmethod
    def of_counts(cls, counts: Mapping[str, Any]) -> Tokens:
        return cls(_int(counts.get(INPUT)), _int(counts.get(OUTPUT)))


@dataclass(frozen=True)
class Prices:
    input_per_million: float
    output_per_million: float
    batch_discount: float
    model: str

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Prices:
        return cls(float(raw["inputPerMillionTokens"]), float(raw["outputPerMillionTokens"]),
                   float(raw["batchDiscount"]), str(raw["model"]))


def _int(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 0
    return max(number, 0)


def of_manifest(manifest: Mapping[str, Any] | None) -> Tokens | None:
    """A job's tokens from its ``manifest.json.out``; None when it has no token counts."""
    if manifest is None or ("inputTokenCount" not in manifest and "outputTokenCount" not in manifest):
        return None
    return Tokens(_int(manifest.get("inputTokenCount")), _int(manifest.get("outputTokenCount")))


def of_output(model_output: Any) -> Tokens:
    """One answer's tokens from its ``usage`` (Converse's, or a native Anthropic body's)."""
    usage = model_output.get("usage") if isinstance(model_output, Mapping) else None
    if not isinstance(usage, Mapping):
        return Tokens()
    if INPUT in usage or OUTPUT in usage:
        return Tokens(_int(usage.get(INPUT)), _int(usage.get(OUTPUT)))
    return Tokens(_int(usage.get("input_tokens")), _int(usage.get("output_tokens")))


def total(outputs: Iterable[Any]) -> Tokens:
    result = Tokens()
    for output in outputs:
        result = result + of_output(output)
    return result


def usage_report(lanes: Mapping[str, Tokens]) -> dict[str, Any]:
    """The run's tokens: in all, and by how they were billed (batch jobs, on-demand calls)."""
    everything = sum(lanes.values(), Tokens())
    return {**everything.as_counts(), **{lane: lanes.get(lane, Tokens()).as_counts() for lane in LANES}}


def cost(lanes: Mapping[str, Tokens], prices: Prices | None) -> dict[str, Any] | None:
    """The run's estimated cost in USD, or None without prices."""
    if prices is None:
        return None

    def at(tokens: Tokens, factor: float) -> float:
        return (tokens.input * prices.input_per_million + tokens.output * prices.output_per_million) * factor / 1e6

    batch, on_demand = lanes.get("batch", Tokens()), lanes.get("onDemand", Tokens())
    everything = batch + on_demand
    return {"currency": "USD", "model": prices.model,
            "estimatedUsd": round(at(batch, prices.batch_discount) + at(on_demand, 1.0), 8),
            "atBatchPricesUsd": round(at(everything, prices.batch_discount), 8),
            "atOnDemandPricesUsd": round(at(everything, 1.0), 8),
            "prices": {"inputPerMillionTokens": prices.input_per_million,
                       "outputPerMillionTokens": prices.output_per_million, "batchDiscount": prices.batch_discount}}
