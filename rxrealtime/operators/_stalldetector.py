from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable

from ..billing import seconds_of
from ..exceptions import ConfigError
from ._scheduling import pick_scheduler
from ._types import Stall


def stall_detector_(
    timeout_s: float,
    states: Observable[Any] | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[Any]], Observable[Stall]]:
    if not timeout_s > 0:
        raise ConfigError(f"timeout_s must be > 0, got {timeout_s!r}")

    def stall_detector(source: Observable[Any]) -> Observable[Stall]:
        def subscribe(
            observer: abc.ObserverBase[Stall], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = pick_scheduler(scheduler, scheduler_)
            timer = SerialDisposable()
            generating = states is None  # without states, assume it generates from now on
            last_seconds: int | None = None

            def fire(_: abc.SchedulerBase, __: Any = None) -> None:
                observer.on_next(Stall(silent_s=float(timeout_s), last_seconds=last_seconds))

            def arm() -> None:
                timer.disposable = clock.schedule_relative(timeout_s, fire)

            def on_tick(tick: Any) -> None:
                nonlocal last_seconds
                last_seconds = seconds_of(tick)
                if generating:
                    arm()

            def on_state(state: Any) -> None:
                nonlocal generating
                now_generating = str(state) == "generating"
                if now_generating and not generating:
                    arm()
                elif not now_generating:
                    timer.disposable = Disposable()
                generating = now_generating

            def on_completed() -> None:
                timer.dispose()
                observer.on_completed()

            disposables = CompositeDisposable(timer)
            if states is not None:
                disposables.add(states.subscribe(on_state, scheduler=scheduler_))
            else:
                arm()
            disposables.add(
                source.subscribe(on_tick, observer.on_error, on_completed, scheduler=scheduler_)
            )
            return disposables

        return Observable(subscribe)

    return stall_detector
