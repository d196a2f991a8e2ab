from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SingleAssignmentDisposable

from ..exceptions import ConfigError
from ._scheduling import pick_scheduler


def billing_rate_(
    window_s: float, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[int]], Observable[float]]:
    if not window_s > 0:
        raise ConfigError(f"window_s must be > 0, got {window_s!r}")

    def billing_rate(source: Observable[int]) -> Observable[float]:
        def subscribe(
            observer: abc.ObserverBase[float], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = pick_scheduler(scheduler, scheduler_)
            window: deque[tuple[float, int]] = deque()  # (time, seconds billed then)
            in_window = 0
            previous: int | None = None
            timers = CompositeDisposable()

            def now() -> float:
                return clock.to_seconds(clock.now)

            def emit_rate() -> None:
                nonlocal in_window
                horizon = now() - window_s
                while window and window[0][0] <= horizon:
                    in_window -= window.popleft()[1]
                observer.on_next(in_window * 60 / window_s)

            def schedule_expiry() -> None:
                # One timer per billed sample, removed when it fires, so a long session
                # holds at most a window's worth of timers.
                holder = SingleAssignmentDisposable()

                def expire(_: abc.SchedulerBase, __: Any = None) -> None:
                    timers.remove(holder)
                    emit_rate()

                timers.add(holder)
                holder.disposable = clock.schedule_relative(window_s, expire)

            def on_next(total: int) -> None:
                nonlocal previous, in_window
                delta = 0 if previous is None else max(0, total - previous)
                previous = total if previous is None else max(previous, total)
                if delta:
                    window.append((now(), delta))
                    in_window += delta
                    schedule_expiry()
                emit_rate()

            def on_completed() -> None:
                timers.dispose()
                observer.on_completed()

            timers.add(
                source.subscribe(on_next, observer.on_error, on_completed, scheduler=scheduler_)
            )
            return timers

        return Observable(subscribe)

    return billing_rate
