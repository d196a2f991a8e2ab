"""What a session core remembers, and the small steps its rules are made of.

:class:`CoreSteps` holds the core's memory (state, current link, prompt and image to
restore, the book of open requests) and the steps every rule repeats: move the state,
publish on a stream, open or drop a link, close for good. Which event leads where is
not decided here: the rules and their table are :mod:`rxrealtime.core.machine`'s, and
:class:`~rxrealtime.core.machine.SessionCore` is this class plus those rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import protocol as p
from ..diagnostics import ReconnectAttempt
from ..exceptions import RealtimeError
from ..states import ConnectionState, SessionInfo
from .acks import AckBook, PendingAck
from .events import (
    CancelTimer,
    CloseForGood,
    CloseLink,
    Decision,
    Emit,
    Event,
    FailAck,
    OpenLink,
    SetState,
    StartTimer,
    Stream,
    TimerFired,
)
from .policy import CoreConfig, ReconnectBudget

__all__ = ["ATTEMPT_DEADLINE", "CONNECT_DEADLINE", "RETRY", "CoreSteps"]

S = ConnectionState
RETRY, CONNECT_DEADLINE, ATTEMPT_DEADLINE = "retry", "connect-deadline", "attempt-deadline"
"""The core's timers: the wait before the next attempt, and the two deadlines."""


@dataclass
class _Link:
    """What the core knows of one link."""

    id: int
    attempt: int
    announced: bool = False  # session_started was emitted for it
    generation_started: bool = False
    ended: p.GenerationEnded | None = None


class CoreSteps:
    """A core's memory and small steps; see the module docstring."""

    def __init__(self, config: CoreConfig | None = None) -> None:
        self.config = config or CoreConfig()
        self.state = ConnectionState.DISCONNECTED
        self.closed = False
        self.info: SessionInfo | None = None
        self.prompt: tuple[str, bool] | None = None
        self.image: str | None = None
        self.acks = AckBook()
        self._budget = ReconnectBudget(self.config.reconnect_budget, self.config.reconnect_window_s)
        self._link: _Link | None = None
        self._links = 0
        self._attempts: list[float] = []  # the waits before each attempt of this round
        self._out: list[Decision] = []
        self._published: list[RealtimeError] = []  # errors already on `errors`, this link

    @property
    def link(self) -> int | None:
        """The number of the current link, if any."""
        return self._link.id if self._link is not None else None

    def _stale(self, event: Event) -> bool:
        link = getattr(event, "link", None)
        return link is not None and (self._link is None or link != self._link.id)

    def _next_attempt(self, attempt: int, cause: RealtimeError | None = None) -> None:
        """Open attempt ``attempt`` now, or after its (jittered) wait; while reconnecting
        each attempt is a diagnostic naming its ``cause``."""
        wait = self.config.jitter(self._attempts[attempt - 1])
        if self.state is S.RECONNECTING:
            why = f"{type(cause).__name__}: {cause}"
            self._emit(Stream.DIAGNOSTICS, ReconnectAttempt(attempt, round(wait, 3), why))
        if wait:
            self._pending_attempt = attempt
            self._out.append(StartTimer(RETRY, wait, TimerFired(RETRY)))
        else:
            self._open(attempt)

    _pending_attempt, _lost_at = 1, 0.0

    def _open(self, attempt: int) -> None:
        self._links += 1
        self._link = _Link(self._links, attempt)
        self._published = []
        if self.state is S.RECONNECTING:
            timeout = self.config.connect_timeout_s
            self._out.append(StartTimer(ATTEMPT_DEADLINE, timeout, TimerFired(ATTEMPT_DEADLINE)))
        self._out.append(OpenLink(self._links, attempt, self.image, self.prompt))

    def _drop_link(self, reason: RealtimeError, drain_s: float = 0.0) -> None:
        """Close the current link; its open requests fail with ``reason``."""
        link, self._link = self._link, None
        if link is not None:
            self._out.append(CloseLink(link.id, drain_s))
        for ack in self.acks.drop_all():
            self._out += [CancelTimer(f"ack:{ack.id}"), FailAck(ack.id, reason)]

    def _fail_ack(self, ack: PendingAck, error: RealtimeError) -> None:
        self._publish(error)
        self._out.append(FailAck(ack.id, error))

    def _close_for_good(self) -> None:
        self._out += [CancelTimer(RETRY), CancelTimer(ATTEMPT_DEADLINE)]
        self._set(S.DISCONNECTED)
        self.closed = True
        self._out.append(CloseForGood())

    def _set(self, state: ConnectionState) -> None:
        if state is not self.state:
            self.state = state
            self._out.append(SetState(state))

    def _emit(self, stream: Stream, value: Any) -> None:
        self._out.append(Emit(stream, value))

    def _publish(self, error: RealtimeError) -> None:
        """``error`` on ``errors``, unless this link published it already."""
        if any(error is seen for seen in self._published):
            return
        self._published.append(error)
        self._emit(Stream.ERRORS, error)
