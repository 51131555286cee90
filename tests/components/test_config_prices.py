"""The token prices the stack is built with (components/config) are the cost estimate's dated price table."""

from __future__ import annotations

from components.config.batch_inference import BATCH_PRICE_FACTOR, TOKEN_PRICES_USD_PER_MILLION
from offline.cost.prices import load_prices


def test_the_built_in_token_prices_are_the_cost_estimates_price_table() -> None:
    for region, models in TOKEN_PRICES_USD_PER_MILLION.items():
        table = load_prices(region)
        assert table.batch_discount == BATCH_PRICE_FACTOR
        assert models == {model: (price.input, price.output) for model, price in table.tokens.items()
                          if price.per == 1_000_000}, region
        assert all(price.per == 1_000_000 for price in table.tokens.values())
