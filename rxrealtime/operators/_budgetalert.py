from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from reactivex import Observable, abc

from ..billing import Rate
from ..exceptions import ConfigError
from ._budget import Budget
from ._types import BudgetAlert


def budget_alert_(
    limit_s: int | None = None,
    limit_cost: Rate | None = None,
    warn_at: Iterable[float] = (0.5, 0.8, 1.0),
    *,
    rate_per_second: Rate | None = None,
    prices: Mapping[str, Rate] | None = None,
    model: str | None = None,
    tier: str | None = None,
) -> Callable[[Observable[int]], Observable[BudgetAlert]]:
    budget = Budget(limit_s, limit_cost, rate_per_second, prices, model, tier)
    given = tuple(warn_at)
    thresholds = sorted(set(given))
    if not thresholds or any(not 0 < t for t in thresholds):
        raise ConfigError(f"warn_at must be non-empty fractions > 0, got {given!r}")

    def budget_alert(source: Observable[int]) -> Observable[BudgetAlert]:
        def subscribe(
            observer: abc.ObserverBase[BudgetAlert], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            pending = list(thresholds)  # ascending; each is popped once it fired

            def on_next(billed_s: int) -> None:
                while pending and budget.reached(billed_s, pending[0]):
                    observer.on_next(
                        BudgetAlert(
                            threshold=pending.pop(0),
                            billed_s=billed_s,
                            cost=budget.cost(billed_s),
                            limit_s=budget.limit_s,
                            limit_cost=budget.limit_cost,
                        )
                    )

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return budget_alert
