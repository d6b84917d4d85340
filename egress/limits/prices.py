"""Prices per model: the catalog's `prices:` (with source and date), then the configuration's
`limits.prices` over them. Spend is counted in micro-dollars.

Token counts are the upstream's usage as the wire layer reads it: input tokens (plus prompt-cache
writes where the API reports them apart) at the input price, output tokens at the output price.
Prompt-cache reads are not charged: the APIs disagree on whether input counts include them, so
the spend is a floor, never a double count (docs/limits.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from egress.core.exchange import Usage
from egress.limits.settings import ModelPrice
from egress.limits.windows import MICRO


class PriceBook:
    def __init__(self, prices: Mapping[str, ModelPrice]) -> None:
        self.prices = dict(prices)
        # Longest first: `claude-sonnet-4-5` prices `claude-sonnet-4-5-20250929`.
        self._prefixes = sorted(self.prices, key=len, reverse=True)

    @classmethod
    def of(cls, catalog_prices: Iterable[Mapping[str, Any]], overrides: Mapping[str, ModelPrice]) -> PriceBook:
        """The catalog's entries (`model` plus a ModelPrice's fields), then the overrides."""
        prices: dict[str, ModelPrice] = {}
        for raw in catalog_prices:
            fields = {k: v for k, v in raw.items() if k != "model"}
            prices[str(raw["model"])] = ModelPrice.model_validate(fields)
        prices.update(overrides)
        return cls(prices)

    def price(self, model: str) -> ModelPrice | None:
        found = self.prices.get(model)
        if found is not None:
            return found
        return next((self.prices[p] for p in self._prefixes if model.startswith(p)), None)

    def spend_micro(self, model: str, usage: Usage) -> int:
        """The answer's cost in micro-dollars (0 for a model without a price)."""
        price = self.price(model)
        if price is None:
            return 0
        tokens_in = (usage.input_tokens or 0) + (usage.cache_write_tokens or 0)
        dollars_mtok = tokens_in * price.input_per_mtok + (usage.output_tokens or 0) * price.output_per_mtok
        return round(dollars_mtok * MICRO / 1_000_000)
