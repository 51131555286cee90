"""The price table (`prices.yaml` beside this module): one price per billed line and region, with its source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PRICES_FILE = Path(__file__).with_name("prices.yaml")
CONFIRMATION = ("aws", "third-party", "unconfirmed")


class PriceError(Exception):
    """A price the estimate needs is missing from the table, or the table is malformed."""


@dataclass(frozen=True)
class Price:
    key: str
    price: float  # USD for `per` units
    per: float
    unit: str
    url: str
    confirmed: str

    def cost(self, quantity: float) -> float:
        return quantity * self.price / self.per


@dataclass(frozen=True)
class TokenPrice:
    model: str
    input: float  # USD per `per` input tokens, on demand
    output: float
    per: float
    url: str
    confirmed: str


@dataclass(frozen=True)
class PriceTable:
    region: str
    date: str
    batch_discount: float
    lines: dict[str, Price]
    tokens: dict[str, TokenPrice]
    source: Path

    def __getitem__(self, key: str) -> Price:
        try:
            return self.lines[key]
        except KeyError:
            raise PriceError(f"{self.source.name}: no price for {key} in {self.region}") from None

    def model(self, model_id: str) -> TokenPrice:
        """The token price of a model id or of an inference profile (`eu.anthropic...` is priced as its model)."""
        for candidate in (model_id, model_id.partition(".")[2]):
            if candidate in self.tokens:
                return self.tokens[candidate]
        known = ", ".join(sorted(self.tokens)) or "none"
        raise PriceError(f"{self.source.name}: no Bedrock price for {model_id} in {self.region} (priced here: "
                         f"{known}); add it under bedrock.models")


def load_prices(region: str, path: Path = PRICES_FILE) -> PriceTable:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if region not in document.get("regions", []):
        raise PriceError(f"{path.name} has no prices for region {region} (it has {', '.join(document['regions'])})")
    lines = {key: _line(key, spec, region, path) for key, spec in document["lines"].items() if region in spec}
    bedrock = document["bedrock"]
    tokens = {model: _tokens(model, spec, region, bedrock["url"], path)
              for model, spec in bedrock["models"].items() if region in spec}
    return PriceTable(region=region, date=str(document["date"]), batch_discount=float(document["batch_discount"]),
                      lines=lines, tokens=tokens, source=path)


def _line(key: str, spec: dict[str, Any], region: str, path: Path) -> Price:
    entry = spec[region]
    confirmed = _confirmation(entry, f"{key}.{region}", path)
    return Price(key=key, price=float(entry["price"]), per=float(spec["per"]), unit=str(spec["unit"]),
                 url=str(spec["url"]), confirmed=confirmed)


def _tokens(model: str, spec: dict[str, Any], region: str, url: str, path: Path) -> TokenPrice:
    entry = spec[region]
    return TokenPrice(model=model, input=float(entry["input"]), output=float(entry["output"]), per=float(spec["per"]),
                      url=url, confirmed=_confirmation(entry, f"bedrock.{model}.{region}", path))


def _confirmation(entry: dict[str, Any], where: str, path: Path) -> str:
    confirmed = str(entry.get("confirmed"))
    if confirmed not in CONFIRMATION:
        raise PriceError(f"{path.name}: {where}.confirmed must be one of {', '.join(CONFIRMATION)}, got {confirmed!r}")
    return confirmed
