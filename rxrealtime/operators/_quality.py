from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ..quality import ConnectionQuality, QualityThresholds, QualityWatch, SessionStats


def quality_(
    thresholds: QualityThresholds | None,
) -> Callable[[Observable[SessionStats]], Observable[ConnectionQuality]]:
    def operator(source: Observable[SessionStats]) -> Observable[ConnectionQuality]:
        def subscribe(
            observer: abc.ObserverBase[ConnectionQuality],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            watch = QualityWatch(thresholds)  # one per subscription: its own "last"

            def on_next(stats: SessionStats) -> None:
                verdict = watch.update(stats)
                if verdict is not None:
                    observer.on_next(verdict)

            subscription = source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )
            return Disposable(subscription.dispose)

        return Observable(subscribe)

    return operator
