from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable

from ._clock import BillingClock, seconds_of


def billed_seconds_(
    resets: Observable[Any] | None = None,
) -> Callable[[Observable[Any]], Observable[int]]:
    def billed_seconds(source: Observable[Any]) -> Observable[int]:
        def subscribe(
            observer: abc.ObserverBase[int], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = BillingClock(resets_known=resets is not None)

            def on_next(tick: Any) -> None:
                try:
                    clock.feed(seconds_of(tick))
                except TypeError as exc:
                    observer.on_error(exc)
                    return
                observer.on_next(clock.total)

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

    return billed_seconds
