from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable

from ..billing import BillingClock, seconds_of

Reading = Callable[[BillingClock, int], int]
"""What to emit after the clock took a tick: (clock, seconds billed by it) -> value."""


def clocked(
    resets: Observable[Any] | None, reading: Reading, name: str
) -> Callable[[Observable[Any]], Observable[int]]:
    """An operator feeding ticks to a :class:`BillingClock` and emitting ``reading``.

    Shared by ``billed_seconds`` (the total) and ``tick_deltas`` (the delta): the same
    clock rules, the same reset wiring.
    """

    def operator(source: Observable[Any]) -> Observable[int]:
        def subscribe(
            observer: abc.ObserverBase[int], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = BillingClock(resets_known=resets is not None)

            def on_next(tick: Any) -> None:
                try:
                    delta = clock.feed(seconds_of(tick))
                except TypeError as exc:
                    observer.on_error(exc)
                    return
                observer.on_next(reading(clock, delta))

            disposables = CompositeDisposable()
            if resets is not None:
                disposables.add(resets.subscribe(lambda _: clock.reset(), scheduler=scheduler))
            disposables.add(
                source.subscribe(
                    on_next, observer.on_error, observer.on_completed, scheduler=scheduler
                )
            )
            return disposables

        return Observable(subscribe)

    operator.__name__ = name
    return operator


def billed_seconds_(
    resets: Observable[Any] | None = None,
) -> Callable[[Observable[Any]], Observable[int]]:
    return clocked(resets, lambda clock, _: clock.total, "billed_seconds")
