"""``idle_guard``: stop a session that bills with nobody changing it or watching it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable

from ..exceptions import ConfigError
from ._budgetguard import Disconnectable, disconnect_later
from ._scheduling import pick_scheduler

__all__ = ["IdleStop", "idle_guard_"]

logger = logging.getLogger("rxrealtime.operators")


class IdleStop(msgspec.Struct, frozen=True, gc=False):
    """``idle_guard`` found the session idle for ``idle_s`` and is disconnecting it."""

    idle_s: float
    ticks: int = 0
    """Ticks billed while idle (since the last prompt change or viewer)."""


def _default_activity(session: Any) -> Observable[Any]:
    acks = [getattr(session, name, None) for name in ("prompt_acks", "image_acks")]
    return reactivex.merge(*[a for a in acks if a is not None])


def _frame_viewers(session: Any, baseline: int | None) -> Callable[[], int]:
    """Subscribers of ``session.frames`` above the baseline (measured on first use, then
    lowered to the fewest seen: the session's own watchers only ever leave)."""
    frames = getattr(session, "frames", None)
    floor = baseline

    def viewers() -> int:
        nonlocal floor
        count: int = getattr(frames, "subscriber_count", 0)
        if floor is None or (baseline is None and count < floor):
            floor = count
        return max(0, count - floor)

    return viewers


def idle_guard_(
    session: Disconnectable,
    after_s: float,
    *,
    activity: Observable[Any] | None = None,
    viewers: Callable[[], int] | None = None,
    baseline: int | None = None,
    states: Observable[Any] | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[Any]], Observable[IdleStop]]:
    if not after_s > 0:
        raise ConfigError(f"after_s must be > 0, got {after_s!r}")
    if baseline is not None and baseline < 0:
        raise ConfigError(f"baseline must be >= 0, got {baseline!r}")
    actions = activity if activity is not None else _default_activity(session)
    changes = states if states is not None else getattr(session, "connection_changes", None)

    def idle_guard(source: Observable[Any]) -> Observable[IdleStop]:
        def subscribe(
            observer: abc.ObserverBase[IdleStop], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = pick_scheduler(scheduler, scheduler_)
            watching = viewers if viewers is not None else _frame_viewers(session, baseline)
            timer = SerialDisposable()
            disposables = CompositeDisposable(timer)
            generating = changes is None  # without states: generating from subscription on
            last_active = 0.0
            idle_ticks = 0
            tripped = False

            def now() -> float:
                return clock.to_seconds(clock.now)

            def active() -> None:
                nonlocal last_active, idle_ticks
                last_active, idle_ticks = now(), 0

            def arm(delay: float) -> None:
                timer.disposable = clock.schedule_relative(delay, fire)

            def fire(_: abc.SchedulerBase, __: Any = None) -> None:
                nonlocal tripped
                if tripped:
                    return
                if not generating or watching() > 0:
                    active()
                idle = now() - last_active
                if idle < after_s - 1e-9:
                    arm(after_s - idle)
                    return
                tripped = True
                disposables.dispose()
                logger.info("idle for %s s while billing; disconnecting", round(idle, 3))
                observer.on_next(IdleStop(idle_s=round(idle, 6), ticks=idle_ticks))
                observer.on_completed()
                disconnect_later(session)

            def on_tick(_: Any) -> None:
                nonlocal idle_ticks
                if watching() > 0:
                    active()
                else:
                    idle_ticks += 1

            def on_state(state: Any) -> None:
                nonlocal generating
                was, generating = generating, str(state) == "generating"
                if generating != was:
                    active()  # idle time counts only while generating (and billed)

            def on_completed() -> None:
                disposables.dispose()
                observer.on_completed()

            active()
            if changes is not None:
                disposables.add(changes.subscribe(on_state, scheduler=scheduler_))
            disposables.add(actions.subscribe(lambda _: active(), scheduler=scheduler_))
            disposables.add(
                source.subscribe(on_tick, observer.on_error, on_completed, scheduler=scheduler_)
            )
            arm(after_s)
            return disposables

        return Observable(subscribe)

    return idle_guard
