"""``projection``: where billing is heading at the current burn rate, against a budget."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

import msgspec
from reactivex import Observable, abc
from reactivex import operators as ops

from ..billing import Rate, resolve_rate
from ._budget import Budget
from ._burnrate import per_minute_cost, seconds_per_minute

__all__ = ["Projection", "projection_"]


class Projection(msgspec.Struct, frozen=True, gc=False):
    """Billing so far, its burn rate, the next hour at that rate, and the budget left.

    The budget fields are ``None`` without a limit; ``time_to_limit_s`` is also ``None``
    while nothing is being billed, and 0 once a limit is reached.
    """

    billed_s: int
    seconds_per_min: float
    next_hour_s: float
    cost: Decimal | None = None
    cost_per_min: Decimal | None = None
    next_hour_cost: Decimal | None = None
    limit_s: int | None = None
    limit_cost: Decimal | None = None
    used: float | None = None
    remaining_s: float | None = None
    time_to_limit_s: float | None = None


def _remaining_s(budget: Budget, billed_s: int) -> float:
    """Billed seconds left before the first limit is reached (never below 0)."""
    left: list[float] = []
    if budget.limit_s is not None:
        left.append(budget.limit_s - billed_s)
    if budget.limit_cost is not None and budget.rate:
        left.append(float((budget.limit_cost - budget.rate * billed_s) / budget.rate))
    return max(0.0, float(min(left))) if left else 0.0


def _used(budget: Budget, billed_s: int) -> float:
    """The largest fraction of any limit used so far."""
    used = [billed_s / budget.limit_s] if budget.limit_s is not None else []
    cost = budget.cost(billed_s)
    if budget.limit_cost is not None and cost is not None:
        used.append(float(cost / budget.limit_cost))
    return max(used)


def projection_(
    limit_s: int | None = None,
    limit_cost: Rate | None = None,
    *,
    window_s: float = 60.0,
    rate_per_second: Rate | None = None,
    prices: Mapping[str, Rate] | None = None,
    model: str | None = None,
    tier: str | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[int]], Observable[Projection]]:
    budget = None
    if limit_s is not None or limit_cost is not None:
        budget = Budget(limit_s, limit_cost, rate_per_second, prices, model, tier)
        rate = budget.rate
    else:
        rate = resolve_rate(rate_per_second, prices, model, tier)
    per_minute = seconds_per_minute(window_s, scheduler)

    def project(billed_s: int, seconds_per_min: float) -> Projection:
        cost = None if rate is None else rate * billed_s
        next_hour_s = seconds_per_min * 60
        hour_cost = per_minute_cost(rate, next_hour_s)
        if budget is None:
            return Projection(billed_s, seconds_per_min, next_hour_s, cost,
                              per_minute_cost(rate, seconds_per_min), hour_cost)  # fmt: skip
        remaining = _remaining_s(budget, billed_s)
        to_limit = 0.0 if remaining <= 0 else None
        if remaining > 0 and seconds_per_min > 0:
            to_limit = remaining * 60 / seconds_per_min
        return Projection(
            billed_s, seconds_per_min, next_hour_s, cost, per_minute_cost(rate, seconds_per_min),
            hour_cost, budget.limit_s, budget.limit_cost, _used(budget, billed_s), remaining,
            to_limit,
        )  # fmt: skip

    def projection(source: Observable[int]) -> Observable[Projection]:
        def subscribe(
            observer: abc.ObserverBase[Projection], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            latest = 0

            def remember(total: int) -> int:
                nonlocal latest
                latest = max(latest, total)
                return total

            # the rate is emitted synchronously after each total (and again as samples
            # leave its window), so ``latest`` already holds the total it was computed from
            return source.pipe(ops.map(remember), per_minute).subscribe(
                lambda per_min: observer.on_next(project(latest, per_min)),
                observer.on_error,
                observer.on_completed,
                scheduler=scheduler_,
            )

        return Observable(subscribe)

    return projection
