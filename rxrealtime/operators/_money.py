"""Prices as ``Decimal``: money never goes through binary floating point."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from ..exceptions import ConfigError

__all__ = ["Rate", "resolve_rate", "to_decimal"]

Rate = Decimal | int | str | float


def to_decimal(value: Rate, what: str = "rate") -> Decimal:
    """``value`` as a Decimal; a float goes through ``str`` so 0.1 stays 0.1."""
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be a number, not a bool")
    try:
        result = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, got {value!r}") from None
    if not result.is_finite() or result < 0:
        raise ConfigError(f"{what} must be a finite number >= 0, got {value!r}")
    return result


def resolve_rate(
    rate_per_second: Rate | None,
    prices: Mapping[str, Rate] | None = None,
    model: str | None = None,
) -> Decimal | None:
    """The price of one billed second: a flat rate, or a model's entry of a price table."""
    if prices is not None:
        if rate_per_second is not None:
            raise ConfigError("pass rate_per_second or prices, not both")
        if model is None:
            raise ConfigError("a price table needs model= to pick the price")
        if model not in prices:
            known = ", ".join(sorted(prices)) or "none"
            raise ConfigError(f"no price for model {model!r} (priced: {known})")
        return to_decimal(prices[model], f"price of {model}")
    if rate_per_second is None:
        return None
    return to_decimal(rate_per_second, "rate_per_second")
