"""The session's lifecycle as a pure state machine: events in, decisions out.

Everything that decides what a session does lives here, and nothing here does it: no
asyncio task, no socket, no clock. The shell (:mod:`rxrealtime.asyncio.shell`) feeds the events
of :mod:`rxrealtime.core.events` and carries out the decisions it gets back, so every rule
is tested by feeding events and reading decisions (``tests/test_core.py``).

The rules (``docs/architecture.md`` draws the table and explains each):

* :data:`TRANSITIONS` maps (state, event type) to a rule; a pair with no row is refused
  with :class:`~rxrealtime.RealtimeError`.
* An event about a link that is no longer the current one is stale and ignored.
* Transient failures are retried (the first connect ``1 + max_attempts`` times within
  ``connect_timeout_s``; a lost link ``max_attempts`` times, each within
  ``connect_timeout_s``, within the reconnect budget); permanent errors and links the
  server ended are not. A session nothing will revive is closed for good.
* ``session_started`` once per link; every error published once; acks matched by the
  :class:`~rxrealtime.core.acks.AckBook`, the acknowledged prompt and image restored.

Ticks and queue positions never pass through here: the shell's read loop hands them to
their streams directly, because the hot path cannot afford a call per tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import protocol as p
from ..diagnostics import ReconnectAttempt, Reconnected
from ..exceptions import (
    AckTimeout,
    ConnectionLost,
    ConnectTimeout,
    NotConnected,
    RealtimeError,
    RequestRejected,
    SessionClosed,
    server_error,
)
from ..states import ConnectionState, SessionInfo, session_info
from .acks import AckBook, PendingAck
from .events import (
    AckTimedOut,
    CancelTimer,
    CloseForGood,
    CloseLink,
    ConnectAborted,
    ConnectFinished,
    ConnectRequested,
    Decision,
    DisconnectRequested,
    Emit,
    Event,
    FailAck,
    FrameReceived,
    LinkDown,
    LinkUp,
    OpenLink,
    SetState,
    SettleAck,
    StartTimer,
    TimerFired,
)
from .policy import CoreConfig, ReconnectBudget, retryable

__all__ = [
    "TRANSITIONS",
    "Rule",
    "SessionCore",
    "transition_table",
]


# -- policy --------------------------------------------------------------------------


@dataclass
class _Link:
    """What the core knows of one link."""

    id: int
    attempt: int
    announced: bool = False  # session_started was emitted for it
    generation_started: bool = False
    ended: p.GenerationEnded | None = None


class Rule(NamedTuple):
    """A row of :data:`TRANSITIONS`: the handler and the states it may lead to."""

    handler: str
    outcomes: tuple[ConnectionState, ...]


S = ConnectionState
_CLOSED = (S.DISCONNECTED,)
_TO_CLOSE = Rule("_disconnect", _CLOSED)
_ACK_TIMEOUT = Rule("_ack_timed_out", ())

TRANSITIONS: dict[ConnectionState, dict[type[Event], Rule]] = {
    S.DISCONNECTED: {
        ConnectRequested: Rule("_connect", (S.CONNECTING,)),
        DisconnectRequested: _TO_CLOSE,
    },
    S.CONNECTING: {
        LinkUp: Rule("_link_up", (S.CONNECTED, S.GENERATING)),
        LinkDown: Rule("_attempt_failed", (S.CONNECTING, S.DISCONNECTED)),
        FrameReceived: Rule("_frame", (S.CONNECTING, S.DISCONNECTED)),
        TimerFired: Rule("_timer", (S.CONNECTING, S.DISCONNECTED)),
        AckTimedOut: _ACK_TIMEOUT,
        ConnectAborted: Rule("_abort_connect", (S.DISCONNECTED,)),
        DisconnectRequested: _TO_CLOSE,
    },
    S.CONNECTED: {
        LinkDown: Rule("_link_lost", (S.RECONNECTING, S.DISCONNECTED)),
        FrameReceived: Rule("_frame", (S.GENERATING, S.DISCONNECTED)),
        AckTimedOut: _ACK_TIMEOUT,
        DisconnectRequested: _TO_CLOSE,
    },
    S.GENERATING: {
        LinkDown: Rule("_link_lost", (S.RECONNECTING, S.DISCONNECTED)),
        FrameReceived: Rule("_frame", (S.DISCONNECTED,)),
        AckTimedOut: _ACK_TIMEOUT,
        DisconnectRequested: _TO_CLOSE,
    },
    S.RECONNECTING: {
        LinkUp: Rule("_link_up", (S.CONNECTED, S.GENERATING)),
        LinkDown: Rule("_attempt_failed", (S.RECONNECTING, S.DISCONNECTED)),
        FrameReceived: Rule("_frame", (S.RECONNECTING, S.DISCONNECTED)),
        TimerFired: Rule("_timer", (S.RECONNECTING, S.DISCONNECTED)),
        AckTimedOut: _ACK_TIMEOUT,
        DisconnectRequested: _TO_CLOSE,
    },
}
"""(state, event type) -> rule. ``_frame`` moves on only for ``error`` frames (a
permanent one loses the link) and ``generation_started`` (connected -> generating)."""

RETRY, CONNECT_DEADLINE, ATTEMPT_DEADLINE = "retry", "connect-deadline", "attempt-deadline"


class SessionCore:
    """One client session's decisions; see the module docstring for the rules."""

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

    # -- the one entry point ---------------------------------------------------------

    def feed(self, event: Event) -> list[Decision]:
        """Apply ``event``; the decisions to carry out, in order."""
        if self.closed or self._stale(event):
            return []
        rule = TRANSITIONS[self.state].get(type(event))
        if rule is None:
            if isinstance(event, ConnectRequested):
                raise RealtimeError(f"connect() called while the session is {self.state}")
            raise RealtimeError(f"{type(event).__name__} is not allowed while {self.state}")
        self._out = []
        getattr(self, rule.handler)(event)
        out, self._out = self._out, []
        return out

    def _stale(self, event: Event) -> bool:
        link = getattr(event, "link", None)
        return link is not None and (self._link is None or link != self._link.id)

    # -- requests with acknowledgements (called by the shell for the user) ------------

    def request(
        self, kind: str, key: str | None, remember: object = None, *, link: int | None = None
    ) -> tuple[PendingAck, list[Decision]]:
        """Book a prompt (``key``: its text) or image request; raises if it cannot be sent.

        With ``remember``, a successful ack makes it what the next link restores. ``link``
        names the link being opened when the shell restores prompt and image on it (in
        any state); a user's request needs an open link in a usable state.
        """
        if self.closed:
            raise SessionClosed("this session was disconnected")
        usable = self.state in (S.CONNECTING, S.CONNECTED, S.GENERATING) or link is not None
        if self._link is None or not usable or link not in (None, self._link.id):
            raise NotConnected(f"the session is {self.state}; connect() first")
        if kind == "prompt":
            what = f"prompt_ack for {(key or '')[:40]!r}"
            ack = self.acks.open("prompt", key, what, remember)
            timeout = self.config.prompt_ack_timeout_s
        else:
            ack = self.acks.open("image", None, "set_image_ack", remember)
            timeout = self.config.image_ack_timeout_s
        return ack, [StartTimer(f"ack:{ack.id}", timeout, AckTimedOut(ack.id))]

    def abandon(self, ack_id: int) -> list[Decision]:
        """The request was never sent (the socket refused it): forget it."""
        return [CancelTimer(f"ack:{ack_id}")] if self.acks.drop(ack_id) else []

    # -- rules -----------------------------------------------------------------------

    def _connect(self, event: ConnectRequested) -> None:
        self.prompt, self.image = event.prompt, event.image
        self._set(S.CONNECTING)
        self._attempts = [0.0, *self.config.reconnect_delays]
        timeout = self.config.connect_timeout_s
        self._out.append(StartTimer(CONNECT_DEADLINE, timeout, TimerFired(CONNECT_DEADLINE)))
        self._next_attempt(1)

    def _link_up(self, event: LinkUp) -> None:
        link = self._link
        assert link is not None
        reconnecting = self.state is S.RECONNECTING
        self._out.append(CancelTimer(ATTEMPT_DEADLINE if reconnecting else CONNECT_DEADLINE))
        self._set(S.CONNECTED)
        if link.generation_started:
            self._set(S.GENERATING)
        if not reconnecting:
            self._out.append(ConnectFinished())
        else:
            downtime = max(0.0, event.at - self._lost_at)
            self._emit("diagnostics", Reconnected(link.attempt, round(downtime, 3)))

    def _attempt_failed(self, event: LinkDown) -> None:
        """An attempt did not come up: the next one, or give up."""
        link = self._link
        assert link is not None
        self._publish(event.error)
        self._drop_link(event.error)
        if self.state is S.RECONNECTING:
            self._out.append(CancelTimer(ATTEMPT_DEADLINE))
        if retryable(event.error) and link.attempt < len(self._attempts):
            self._next_attempt(link.attempt + 1, event.error)
        elif self.state is S.CONNECTING:
            self._out.append(CancelTimer(CONNECT_DEADLINE))
            self._set(S.DISCONNECTED)
            self._out.append(ConnectFinished(event.error))
        else:
            self._close_for_good()

    def _link_lost(self, event: LinkDown) -> None:
        """An established link died: reconnect if the policy and the cause allow."""
        link = self._link
        assert link is not None
        if link.ended is None:
            self._publish(event.error)
        self._drop_link(event.error)
        self._attempts = list(self.config.reconnect_delays)
        if not (retryable(event.error) and link.ended is None and self._attempts):
            self._close_for_good()
        elif not self._budget.spend(event.at):
            budget, window = self.config.reconnect_budget, self.config.reconnect_window_s
            self._publish(ConnectionLost(
                f"gave up reconnecting: more than {budget} links lost within {window:g} s "
                "(the reconnect budget); the server keeps ending sessions"
            ))  # fmt: skip
            self._close_for_good()
        else:
            self._lost_at = event.at
            self._set(S.RECONNECTING)
            self._next_attempt(1, event.error)

    def _timer(self, event: TimerFired) -> None:
        if event.timer == RETRY:
            self._open(self._pending_attempt)
        elif event.timer == CONNECT_DEADLINE:
            timeout = self.config.connect_timeout_s
            error = ConnectTimeout(f"no connection to {self.config.describe} within {timeout:g} s")
            self._publish(error)
            self._drop_link(error)
            self._out.append(CancelTimer(RETRY))
            self._set(S.DISCONNECTED)
            self._out.append(ConnectFinished(error))
        elif event.timer == ATTEMPT_DEADLINE and self._link is not None:
            timeout = self.config.connect_timeout_s
            error = ConnectTimeout(
                f"attempt {self._link.attempt}: no connection within {timeout:g} s"
            )
            self._attempt_failed(LinkDown(self._link.id, error))

    def _ack_timed_out(self, event: AckTimedOut) -> None:
        ack = self.acks.drop(event.ack)
        if ack is not None:
            timeout = (
                self.config.prompt_ack_timeout_s
                if ack.kind == "prompt"
                else self.config.image_ack_timeout_s
            )
            self._fail_ack(ack, AckTimeout(f"no {ack.what} within {timeout:g} s"))

    def _disconnect(self, event: DisconnectRequested) -> None:
        if self.state is S.CONNECTING:
            self._out.append(CancelTimer(CONNECT_DEADLINE))
            closed = SessionClosed("the session was disconnected while connecting")
            self._drop_link(SessionClosed("session disconnected"))
            self._set(S.DISCONNECTED)
            self._out.append(ConnectFinished(closed))
        else:
            established = self.state in (S.CONNECTED, S.GENERATING)
            drain = self.config.disconnect_drain_s if established else 0.0
            self._drop_link(SessionClosed("session disconnected"), drain)
        self._close_for_good()

    def _abort_connect(self, event: ConnectAborted) -> None:
        """The caller of ``connect()`` gave up (cancelled): back to disconnected, reusable."""
        self._out += [CancelTimer(CONNECT_DEADLINE), CancelTimer(RETRY)]
        self._drop_link(SessionClosed("connect() was cancelled"))
        self._set(S.DISCONNECTED)

    # -- control frames --------------------------------------------------------------

    def _frame(self, event: FrameReceived) -> None:
        frame, link = event.frame, self._link
        assert link is not None
        if isinstance(frame, (p.SessionIdMessage, p.LivekitRoomInfo)):
            self.info = session_info(frame)
            if not link.announced:
                link.announced = True
                self._emit("session_started", self.info)
        elif isinstance(frame, p.PromptAck):
            self._settle(self.acks.settle("prompt", frame.prompt), frame, "prompt")
            self._emit("prompt_acks", frame)
        elif isinstance(frame, p.SetImageAck):
            self._settle(self.acks.settle("image", None), frame, "image")
            self._emit("image_acks", frame)
        elif isinstance(frame, p.GenerationStarted):
            link.generation_started = True
            if self.state is S.CONNECTED:
                self._set(S.GENERATING)
            self._emit("generation_started", frame)
        elif isinstance(frame, p.GenerationEnded):
            link.ended = frame
            self._emit("generation_ended", frame)
        elif isinstance(frame, p.ErrorMessage):
            error = server_error(self.config.redact(frame.error))
            self._publish(error)
            if self.state in (S.CONNECTING, S.RECONNECTING):
                self._attempt_failed(LinkDown(link.id, error))  # the attempt fails with it
            elif error.permanent:
                self._link_lost(LinkDown(link.id, error))

    def _settle(
        self, ack: PendingAck | None, frame: p.PromptAck | p.SetImageAck, kind: str
    ) -> None:
        if ack is None:
            return  # a late ack: its request timed out already
        self._out.append(CancelTimer(f"ack:{ack.id}"))
        if frame.success:
            if ack.remember is not None:
                if kind == "prompt":
                    self.prompt = ack.remember  # type: ignore[assignment]
                else:
                    self.image = ack.remember  # type: ignore[assignment]
            self._out.append(SettleAck(ack.id, frame))
        else:
            reason = self.config.redact(frame.error or "no reason given")
            self._fail_ack(ack, RequestRejected(f"{kind} rejected: {reason}"))

    # -- small steps -----------------------------------------------------------------

    def _next_attempt(self, attempt: int, cause: RealtimeError | None = None) -> None:
        wait = self.config.jitter(self._attempts[attempt - 1])
        if self.state is S.RECONNECTING:
            why = f"{type(cause).__name__}: {cause}"
            self._emit("diagnostics", ReconnectAttempt(attempt, round(wait, 3), why))
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

    def _emit(self, stream: str, value: Any) -> None:
        self._out.append(Emit(stream, value))

    def _publish(self, error: RealtimeError) -> None:
        """``error`` on ``errors``, unless this link published it already."""
        if any(error is seen for seen in self._published):
            return
        self._published.append(error)
        self._emit("errors", error)


def transition_table() -> list[tuple[str, str, str, str]]:
    """The rows of :data:`TRANSITIONS` as text: state, event, rule, possible next states.

    ``docs/architecture.md`` prints this table, so the picture cannot drift from the code.
    """
    rows = []
    for state, rules in TRANSITIONS.items():
        for event, rule in rules.items():
            outcomes = ", ".join(str(s) for s in rule.outcomes) or "(unchanged)"
            rows.append((str(state), event.__name__, rule.handler.lstrip("_"), outcomes))
    return rows
