"""``burn_rate``: billing_rate's seconds per minute, with what they cost per minute.

Until a whole window has passed since the first total, ``billing_rate`` divides a part
of a window's billing by the whole window and reads low (a session billing 300 s a
minute would show 30 after 6 s). The burn rate divides by the time actually observed
instead (a second at least), so a budget's countdown is right from the second tick on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

import msgspec
from reactivex import Observable, abc
from reactivex import operators as ops

from ..billing import Rate, resolve_rate
from ._billingrate import billing_rate_
from ._scheduling import pick_scheduler

__all__ = ["BurnRate", "burn_rate_", "per_minute_cost", "seconds_per_minute"]


class BurnRate(msgspec.Struct, frozen=True, gc=False):
    """Billed seconds per minute over the last ``window_s``, and their cost per minute."""

    seconds_per_min: float
    cost_per_min: Decimal | None = None
    window_s: float = 60.0


def per_minute_cost(rate: Decimal | None, seconds_per_min: float) -> Decimal | None:
    """What ``seconds_per_min`` billed seconds cost, exactly (``None`` without a rate)."""
    if rate is None:
        return None
    return rate * Decimal(str(round(seconds_per_min, 9))).normalize()


def seconds_per_minute(
    window_s: float, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[int]], Observable[float]]:
    """``billing_rate`` over the time observed so far while that is shorter than a window."""
    per_minute = billing_rate_(window_s, scheduler)

    def rate(source: Observable[int]) -> Observable[float]:
        def subscribe(
            observer: abc.ObserverBase[float], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = pick_scheduler(scheduler, scheduler_)
            first: list[float] = []  # when the first total (billing_rate's baseline) came

            def now() -> float:
                return clock.to_seconds(clock.now)

            def note(total: int) -> int:
                if not first:
                    first.append(now())
                return total

            def scale(value: float) -> float:
                # at least a second (or the window): a burst at the start is not a rate
                seen = max(now() - first[0] if first else 0.0, min(1.0, window_s))
                return value * window_s / seen if seen < window_s else value

            return source.pipe(ops.map(note), per_minute, ops.map(scale)).subscribe(
                observer, scheduler=scheduler_
            )

        return Observable(subscribe)

    return rate


def burn_rate_(
    window_s: float = 60.0,
    *,
    rate_per_second: Rate | None = None,
    prices: Mapping[str, Rate] | None = None,
    model: str | None = None,
    tier: str | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[int]], Observable[BurnRate]]:
    rate = resolve_rate(rate_per_second, prices, model, tier)
    per_minute = seconds_per_minute(window_s, scheduler)
    window = float(window_s)

    def to_burn(seconds_per_min: float) -> BurnRate:
        return BurnRate(seconds_per_min, per_minute_cost(rate, seconds_per_min), window)

    def burn_rate(source: Observable[int]) -> Observable[BurnRate]:
        return source.pipe(per_minute, ops.map(to_burn))

    return burn_rate
