"""The numbers and classifications the session core decides with: pure, no I/O.

What counts as transient, how long to wait and for how long to try, what a close code
means and which billing ticks are believable are policy, kept apart from the state
machine (:mod:`rxrealtime.core.machine`) so that each can change alone and be tested alone.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..exceptions import ConfigError, ConnectionLost, RequestRejected, SessionClosed

__all__ = [
    "CLOSE_CODE_MEANINGS",
    "CoreConfig",
    "ReconnectBudget",
    "TickGuard",
    "close_error",
    "make_jitter",
    "retryable",
]


def retryable(error: BaseException | None) -> bool:
    """Whether the protocol calls this failure transient (worth another attempt)."""
    if isinstance(error, (ConfigError, RequestRejected, SessionClosed)):
        return False
    return not getattr(error, "permanent", False)


#: What WebSocket close codes mean (RFC 6455 section 7.4.1), for errors people can read.
CLOSE_CODE_MEANINGS = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1006: "abnormal closure: no close frame, the connection dropped",
    1007: "invalid frame payload",
    1008: "policy violation",
    1009: "message too big",
    1011: "internal server error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
}


def close_error(code: int | None) -> ConnectionLost:
    """The error for a signaling socket the server (or the network) closed.

    A normal close (1000) without ``generation_ended`` is the server ending the session,
    and an application code (4000-4999) is the server's own refusal: neither is worth a
    reconnect, since the protocol defines no application code as transient. Anything
    else (a dropped network, 1001, 1011, 1012, 1013...) is transient.
    """
    if code is None or code == 1006:
        return ConnectionLost(f"signaling socket closed (code {code or 1006}: "
                              f"{CLOSE_CODE_MEANINGS[1006]})", code=code)  # fmt: skip
    if code == 1000:
        return ConnectionLost(
            "the server closed the session (code 1000, normal closure) without "
            "generation_ended; not reconnecting", code=code, permanent=True,
        )  # fmt: skip
    if 4000 <= code <= 4999:
        return ConnectionLost(
            f"the server closed the session with application code {code}; the protocol "
            "defines none as transient, so not reconnecting", code=code, permanent=True,
        )  # fmt: skip
    meaning = CLOSE_CODE_MEANINGS.get(code, "unknown code")
    return ConnectionLost(f"signaling socket closed (code {code}: {meaning})", code=code)


class ReconnectBudget:
    """At most ``limit`` reconnects within any ``window_s``: a server that accepts and then
    kills every link would otherwise get a new (billed) server session forever, since
    each reconnect succeeds and ``max_attempts`` only counts failures in a row."""

    __slots__ = ("_losses", "limit", "window_s")

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self._losses: deque[float] = deque()

    def spend(self, now: float) -> bool:
        """Record a lost link at ``now``; False if that exceeds the budget."""
        losses = self._losses
        losses.append(now)
        while losses and losses[0] <= now - self.window_s:
            losses.popleft()
        return len(losses) <= self.limit


class TickGuard:
    """Billing sanity for one server session's ticks (cumulative seconds).

    A tick may step ahead of the last believed one by up to ``max_step_s`` freely. A
    larger step must be explained by time: the session's billed seconds may not exceed
    ``max_step_s`` plus twice the wall-clock time since its first tick. So a
    legitimate tick after a long network stall (a large step after a long silence)
    passes, a test server billing many seconds per fast tick passes (its steps are
    small), and a jump of a million seconds within a second does not. Lower values
    (duplicates, late ticks) pass: the billing operators handle them. A refused tick is
    not billed and does not move the mark. The clock is read at the first tick and at
    large steps only, to keep the hot path to a comparison.
    """

    __slots__ = ("_first", "_start", "last", "max_step_s")

    def __init__(self, max_step_s: float) -> None:
        self.max_step_s = max_step_s
        self.last = 0
        self._first = 0
        self._start: float | None = None

    def admits(self, seconds: int, now: float) -> bool:
        """Whether to believe a tick (``now``: the monotonic clock) that steps more than
        ``max_step_s`` ahead of :attr:`last`, or that is the first of the session."""
        if seconds <= self.last:
            return True
        if self._start is None:
            if seconds > self.max_step_s:  # a first tick is a step from 0
                return False
            self._start, self._first = now, seconds
        elif seconds - self._first > self.max_step_s + 2.0 * (now - self._start):
            return False
        self.last = seconds
        return True

    def explain(self, seconds: int) -> str:
        return (
            f"generation_tick jumps from {self.last} to {seconds} s, more than billing "
            f"can advance (max_tick_step_s={self.max_step_s:g} plus twice the time "
            "elapsed since the session's first tick); not billed"
        )


Jitter = Literal["none", "full", "decorrelated"]


def make_jitter(
    mode: Jitter, rng: random.Random | None = None, cap_s: float = 10.0
) -> Callable[[float], float]:
    """Spread backoff waits so a fleet that lost its network does not come back in step.

    ``full``: a uniform wait between 0 and the delay. ``decorrelated``: a uniform wait
    between the delay and three times the previous wait, at most ``cap_s``. ``none``:
    the delay as is. A delay of 0 (the first attempt of a connect) stays 0.
    """
    draw = (rng or random.Random()).uniform
    previous = 0.0

    def jitter(delay: float) -> float:
        nonlocal previous
        if mode == "none" or delay <= 0:
            return delay
        if mode == "full":
            return draw(0.0, delay)
        previous = min(cap_s, draw(delay, max(delay, previous * 3)))
        return previous

    return jitter


@dataclass
class CoreConfig:
    """The numbers the core decides with (from the validated session options)."""

    connect_timeout_s: float = 30.0
    reconnect_delays: Sequence[float] = (1.0, 2.0, 4.0, 8.0, 10.0)
    reconnect_budget: int = 10
    """At most this many reconnects within ``reconnect_window_s``; then close for good."""
    reconnect_window_s: float = 300.0
    jitter: Callable[[float], float] = field(default=lambda delay: delay)
    """The wait actually used for a backoff delay (see :func:`make_jitter`)."""
    prompt_ack_timeout_s: float = 15.0
    image_ack_timeout_s: float = 30.0
    disconnect_drain_s: float = 1.0
    describe: str = "the service"
    """How errors name the server (the URL with secrets removed)."""
    redact: Callable[[str], str] = field(default=lambda text: text)
    """Removes secrets from server-provided text before it becomes an error."""
