from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from reactivex import Observable, abc
from reactivex.disposable import SingleAssignmentDisposable

from ..billing import Rate
from ._budget import Budget
from ._types import BudgetExceeded

logger = logging.getLogger("rxrealtime.operators")

# Disconnect tasks must be referenced until they finish, or asyncio may collect them.
_pending: set[asyncio.Future[Any]] = set()


class Disconnectable(Protocol):
    """What the guard needs of a session: a way to end it cleanly."""

    def disconnect(self) -> Awaitable[None]: ...


def disconnect_later(session: Disconnectable) -> None:
    """Call ``session.disconnect()`` on the running loop, logging a failure."""

    async def run() -> None:
        try:
            await session.disconnect()
        except Exception:
            logger.exception("disconnecting the session failed")

    task = asyncio.ensure_future(run())
    _pending.add(task)
    task.add_done_callback(_pending.discard)


def budget_guard_(
    session: Disconnectable,
    limit_s: int | None = None,
    limit_cost: Rate | None = None,
    *,
    rate_per_second: Rate | None = None,
    prices: Mapping[str, Rate] | None = None,
    model: str | None = None,
    tier: str | None = None,
) -> Callable[[Observable[int]], Observable[BudgetExceeded]]:
    budget = Budget(limit_s, limit_cost, rate_per_second, prices, model, tier)

    def budget_guard(source: Observable[int]) -> Observable[BudgetExceeded]:
        def subscribe(
            observer: abc.ObserverBase[BudgetExceeded], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            subscription = SingleAssignmentDisposable()
            tripped = False

            def on_next(billed_s: int) -> None:
                nonlocal tripped
                if tripped or not budget.reached(billed_s):
                    return
                tripped = True
                subscription.dispose()  # the disconnect completes the source; we are done
                logger.info("budget reached at %s billed seconds; disconnecting", billed_s)
                observer.on_next(
                    BudgetExceeded(
                        billed_s=billed_s,
                        cost=budget.cost(billed_s),
                        limit_s=budget.limit_s,
                        limit_cost=budget.limit_cost,
                    )
                )
                observer.on_completed()
                disconnect_later(session)

            subscription.disposable = source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )
            return subscription

        return Observable(subscribe)

    return budget_guard
