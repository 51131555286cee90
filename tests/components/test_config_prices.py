"""The token prices the stack is built with (components/config) are the cost estimate's dated price table, and a
run is costed at the configured prices before them."""

from __future__ import annotations

from components.config import parse_stack_config
from components.config.batch_inference import BATCH_PRICE_FACTOR, TOKEN_PRICES_USD_PER_MILLION, TokenPrices
from offline.cost.prices import load_prices


def test_the_built_in_token_prices_are_the_cost_estimates_price_table() -> None:
    for region, models in TOKEN_PRICES_USD_PER_MILLION.items():
        table = load_prices(region)
        assert table.batch_discount == BATCH_PRICE_FACTOR
        assert models == {model: (price.input, price.output) for model, price in table.tokens.items()
                          if price.per == 1_000_000}, region
        assert all(price.per == 1_000_000 for price in table.tokens.values())


BATCH = {"model": {"modelId": "anthropic.claude-3-haiku-20240307-v1:0", "task": "summarize"}}


def test_runs_are_costed_at_the_configured_prices_else_the_built_in_ones_of_the_region() -> None:
    settings = parse_stack_config({"owner": "data", "batchInference": BATCH}, stack="dev").batch_inference
    assert settings is not None
    assert settings.prices_in("us-east-1") == TokenPrices(input_per_million_tokens=0.25, output_per_million_tokens=1.25,
                                                          batch_discount=BATCH_PRICE_FACTOR)
    assert settings.prices_in("ap-south-1") is None  # a region the table lacks: tokens, no cost
    configured = {"inputPerMillionTokens": 0.3, "outputPerMillionTokens": 1.5, "batchDiscount": 0.4}
    settings = parse_stack_config({"owner": "data", "batchInference": {**BATCH, "tokenPrices": configured}},
                                  stack="dev").batch_inference
    assert settings is not None
    assert settings.prices_in("us-east-1") == TokenPrices(input_per_million_tokens=0.3, output_per_million_tokens=1.5,
                                                          batch_discount=0.4)
