"""Limits shared by ``budget_alert`` and ``budget_guard``: validated once, at the call."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from ..billing import Rate, resolve_rate, to_decimal
from ..exceptions import ConfigError

__all__ = ["Budget"]


class Budget:
    """A limit in billed seconds, in money, or both (whichever is reached first counts)."""

    __slots__ = ("limit_cost", "limit_s", "rate")

    def __init__(
        self,
        limit_s: int | None,
        limit_cost: Rate | None,
        rate_per_second: Rate | None,
        prices: Mapping[str, Rate] | None,
        model: str | None,
        tier: str | None = None,
    ) -> None:
        if limit_s is None and limit_cost is None:
            raise ConfigError("a budget needs limit_s=, limit_cost= or both")
        if limit_s is not None and (isinstance(limit_s, bool) or limit_s <= 0):
            raise ConfigError(f"limit_s must be a positive number of seconds, got {limit_s!r}")
        self.limit_s = limit_s
        self.limit_cost = to_decimal(limit_cost, "limit_cost") if limit_cost is not None else None
        if self.limit_cost is not None and self.limit_cost <= 0:
            raise ConfigError("limit_cost must be > 0")
        self.rate = resolve_rate(rate_per_second, prices, model, tier)
        if self.limit_cost is not None and self.rate is None:
            raise ConfigError("limit_cost needs rate_per_second= or prices= + model=")

    def cost(self, billed_s: int) -> Decimal | None:
        return None if self.rate is None else self.rate * billed_s

    def reached(self, billed_s: int, threshold: float | Decimal = 1) -> bool:
        """Whether ``billed_s`` is at or past ``threshold`` of any limit (exact arithmetic)."""
        fraction = Decimal(str(threshold)) if isinstance(threshold, float) else threshold
        if self.limit_s is not None and billed_s >= fraction * self.limit_s:
            return True
        cost = self.cost(billed_s)
        if self.limit_cost is None or cost is None:
            return False
        return cost >= fraction * self.limit_cost
