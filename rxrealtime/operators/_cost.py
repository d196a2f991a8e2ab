from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from reactivex import Observable, abc

from ..billing import Rate, resolve_rate
from ..exceptions import ConfigError


def cost_(
    rate_per_second: Rate | None = None,
    *,
    prices: Mapping[str, Rate] | None = None,
    model: str | None = None,
    tier: str | None = None,
) -> Callable[[Observable[int]], Observable[Decimal]]:
    rate = resolve_rate(rate_per_second, prices, model, tier)
    if rate is None:
        raise ConfigError("cost() needs rate_per_second or prices + model")

    def cost(source: Observable[int]) -> Observable[Decimal]:
        def subscribe(
            observer: abc.ObserverBase[Decimal], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def on_next(billed_s: int) -> None:
                observer.on_next(rate * billed_s)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return cost
