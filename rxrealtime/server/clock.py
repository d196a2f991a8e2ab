"""The billing clock of a server session: one ``generation_tick`` per interval.

The rules (when a drop is due, when ticks stall, what a tick bills, when credits run
out) live in :class:`TickLedger` and two plain functions, with no socket and no clock
of their own, so they can be tested directly; :func:`run_billing_clock` only paces
them and does the sending.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from .settings import BadFrame, Faults, ServerSettings

__all__ = [
    "TickLedger",
    "TickStep",
    "TickTarget",
    "bad_frames_due",
    "credits_exhausted",
    "run_billing_clock",
]


@dataclass(frozen=True)
class TickStep:
    """What to do at one tick boundary.

    ``drop``: end the connection now, before anything of this tick is sent. ``stall``:
    the second was billed but is not announced. ``send``: announce ``seconds`` (the
    total after this tick); it is billed only once delivered (:meth:`TickLedger.delivered`).
    """

    action: Literal["drop", "stall", "send"]
    seconds: int = 0
    stall_began: bool = False
    """This boundary started the (one) stall of the session: count it."""


@dataclass
class TickLedger:
    """A session's billing state, advanced one tick boundary at a time."""

    billed: int = 0
    """Seconds billed: every delivered tick, plus the silent ticks of a stall."""
    ticks: int = 0
    """Ticks delivered to the client."""
    drop_due: float | None = None
    """Loop time from which the next boundary drops the connection (0: the next one)."""
    stalled_until: float | None = None
    """End of the stall, once it has begun; a session stalls at most once."""

    def step(self, now: float, faults: Faults, seconds_per_tick: int) -> TickStep:
        """Decide the boundary at ``now``; a stalled second is billed here and then."""
        if self.drop_due is not None and now >= self.drop_due:
            return TickStep("drop")
        began = False
        if faults.stall_ticks_after is not None and self.ticks == faults.stall_ticks_after:
            if self.stalled_until is None:
                self.stalled_until = now + faults.stall_ticks_for_s
                began = True
            if now < self.stalled_until:
                self.billed += seconds_per_tick  # generation goes on, unannounced
                return TickStep("stall", stall_began=began)
        return TickStep("send", seconds=self.billed + seconds_per_tick, stall_began=began)

    def delivered(self, seconds: int) -> None:
        """The tick announcing ``seconds`` reached the client: bill it."""
        self.billed, self.ticks = seconds, self.ticks + 1


def bad_frames_due(ticks: int, faults: Faults) -> tuple[BadFrame, ...]:
    """The bad frames to send after the ``ticks``-th delivered tick (often none)."""
    if faults.bad_frames and ticks % faults.bad_frames_every_n_ticks == 0:
        return faults.bad_frames
    return ()


def credits_exhausted(billed: int, credits_s: int | None) -> bool:
    """Whether a session that has billed ``billed`` seconds must stop generating."""
    return credits_s is not None and billed >= credits_s


class TickTarget(Protocol):
    """The session a clock bills for, as the clock needs it."""

    @property
    def closed(self) -> bool: ...

    async def send_tick(self, seconds: int) -> bool:
        """Announce ``seconds`` to the client (and viewers); False if the client is gone."""
        ...

    async def send_raw(self, frame: str | bytes) -> None: ...

    def drop_socket(self) -> None: ...

    async def end(self, reason: str, error: str | None = None) -> None: ...


async def run_billing_clock(
    target: TickTarget,
    ledger: TickLedger,
    settings: ServerSettings,
    count: Callable[[str], None],
) -> None:
    """Bill and announce one tick per interval until the session closes.

    A second counts as billed only once its tick is written to the client, so the
    server's total and the client's last tick agree even when the client vanishes.
    Socket drops happen here, on a tick boundary, so no tick is ever half-sent:
    a test can then demand that not one tick is lost.
    """
    faults = settings.faults
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while not target.closed:
        next_at += settings.tick_interval_s
        await asyncio.sleep(max(0.0, next_at - loop.time()))
        step = ledger.step(loop.time(), faults, settings.seconds_per_tick)
        if step.stall_began:
            count("stalls")
        if step.action == "drop":
            target.drop_socket()
            return
        if step.action == "stall":
            continue
        if not await target.send_tick(step.seconds):
            return  # the client is gone: nothing more is generated or billed
        ledger.delivered(step.seconds)
        count("ticks")
        for kind in bad_frames_due(ledger.ticks, faults):
            await target.send_raw(faults.bad_frame(kind))
        if credits_exhausted(ledger.billed, settings.credits_s):
            await target.end("insufficient_credits", "insufficient credits")
            return
