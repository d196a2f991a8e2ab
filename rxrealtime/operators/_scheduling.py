"""Which scheduler a time-based operator uses."""

from __future__ import annotations

import asyncio

from reactivex import abc
from reactivex.scheduler import TimeoutScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler

__all__ = ["pick_scheduler"]


def pick_scheduler(
    explicit: abc.SchedulerBase | None, at_subscribe: abc.SchedulerBase | None
) -> abc.SchedulerBase:
    """The operator's own scheduler, else the subscriber's, else the running loop's.

    Everything in a session happens on the asyncio loop's thread (DESIGN.md), so the
    fallback is an ``AsyncIOScheduler`` for the running loop; only code that runs no
    loop at all gets reactivex's thread-based ``TimeoutScheduler``.
    """
    if explicit is not None:
        return explicit
    if at_subscribe is not None:
        return at_subscribe
    try:
        return AsyncIOScheduler(asyncio.get_running_loop())
    except RuntimeError:
        return TimeoutScheduler.singleton()
