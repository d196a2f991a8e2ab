from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ..quality import ConnectionQuality, QualityThresholds, SessionStats, assess


def quality_(
    thresholds: QualityThresholds | None,
) -> Callable[[Observable[SessionStats]], Observable[ConnectionQuality]]:
    def operator(source: Observable[SessionStats]) -> Observable[ConnectionQuality]:
        def subscribe(
            observer: abc.ObserverBase[ConnectionQuality],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            last: list[Any] = []

            def on_next(stats: SessionStats) -> None:
                verdict = assess(stats, thresholds)
                key = (verdict.level, verdict.limiting)
                if not last or last[0] != key:
                    last[:] = [key]
                    observer.on_next(verdict)

            subscription = source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )
            return Disposable(subscription.dispose)

        return Observable(subscribe)

    return operator
