"""The fleet-wide budget guard, and the stop commands an aggregator sends.

Once the fleet's billed seconds reach ``budget_s`` (or its cost ``budget_cost``), the
guard logs it, marks the time and publishes one fleet-wide :class:`StopCommand`. A
session that still ticks afterwards (a worker that missed the command, a session that
started later, an aggregator that restarted past the budget) gets a stop by name, at
most every ``resend_s``. Stops are plain NATS publishes: on loopback a command reaches
its workers in about a millisecond, well within one tick interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from nats.aio.client import Client

from ..billing import Rate, to_decimal
from ..exceptions import ConfigError
from ..states import ConnectionState
from .control import send_stop
from .frames import StopCommand, Subjects
from .ledger import FleetLedger, Member

__all__ = ["BudgetGuard"]

logger = logging.getLogger(__name__)


class BudgetGuard:
    """See the module docstring; ``on_sent(command, subject)`` hears of every stop sent."""

    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        ledger: FleetLedger,
        *,
        budget_s: int | None,
        budget_cost: Rate | None,
        resend_s: float,
        priced: bool,
        on_sent: Callable[[StopCommand, str], None],
    ) -> None:
        if budget_s is not None and budget_s <= 0:
            raise ConfigError("budget_s must be > 0")
        self.budget_s = budget_s
        self.budget_cost = None if budget_cost is None else to_decimal(budget_cost, "budget_cost")
        if self.budget_cost is not None and not priced:
            raise ConfigError("budget_cost needs prices or rate_per_second")
        self.nc, self.subjects, self.ledger = nc, subjects, ledger
        self.resend_s, self.on_sent = resend_s, on_sent
        self.crossed_at: float | None = None
        """Wall-clock time (``time.time()``) the budget was first found crossed."""
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def active(self) -> bool:
        return self.budget_s is not None or self.budget_cost is not None

    @property
    def limit(self) -> str:
        return f"{self.budget_s} s" if self.budget_s is not None else f"{self.budget_cost}"

    def over(self, cost: Decimal | None) -> bool:
        if self.budget_s is not None and self.ledger.total >= self.budget_s:
            return True
        return self.budget_cost is not None and cost is not None and cost >= self.budget_cost

    def restored(self, cost: Decimal | None) -> None:
        """After a restart: a fleet already past its budget stops whatever still ticks."""
        if self.active and self.over(cost):
            self.crossed_at = time.time()

    def check(self, member: Member, ticked: bool, cost: Decimal | None) -> None:
        """After each frame: cross the budget, or enforce it on a session still ticking."""
        if self.crossed_at is None:
            if not self.over(cost):
                return
            self.crossed_at = now = time.time()
            logger.warning(
                "fleet: budget of %s reached (%d s billed, cost %s): stopping every session",
                self.limit,
                self.ledger.total,
                cost,
            )
            for m in self.ledger.members.values():
                m.stop_sent_at = now
            self.spawn(self.command(f"fleet budget of {self.limit} reached"))
            return
        if ticked and member.state is not ConnectionState.DISCONNECTED:
            now = time.time()
            if member.stop_sent_at is None or now - member.stop_sent_at >= self.resend_s:
                member.stop_sent_at = now
                self.spawn(self.command(f"fleet budget of {self.limit} reached", member))

    def command(self, reason: str, member: Member | None = None) -> StopCommand:
        return StopCommand(
            id=uuid.uuid4().hex[:12],
            reason=reason,
            worker=member.worker if member else "*",
            key=member.display_key if member else "*",
            billed_s=self.ledger.total,
            budget_s=self.budget_s,
            at=time.time(),
        )

    async def send(self, command: StopCommand) -> StopCommand:
        subject = await send_stop(self.nc, self.subjects, command)
        logger.warning("fleet: stop command %s to %s: %s", command.id, subject, command.reason)
        self.on_sent(command, subject)
        return command

    def spawn(self, command: StopCommand) -> None:
        task = asyncio.ensure_future(self.send(command))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("fleet: publishing a stop command failed: %s", task.exception())

    async def close(self) -> None:
        """Let the stop commands under way go out."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
