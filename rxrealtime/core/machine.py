"""The session's lifecycle as a pure state machine: events in, decisions out.

Everything that decides what a session does lives here, and nothing here does it: no
asyncio task, no socket, no clock. The shell (:mod:`rxrealtime.asyncio.shell`) feeds the events
of :mod:`rxrealtime.core.events` and carries out the decisions it gets back, so every rule
is tested by feeding events and reading decisions (``tests/core/test_machine.py``).

The rules (``docs/architecture.md`` draws the table and explains each):

* :data:`TRANSITIONS` maps (state, event type) to a :class:`Rule`: the rule function
  itself and every state it may leave the core in. A pair with no row is refused with
  :class:`~rxrealtime.RealtimeError`; a rule that leaves the core in a state its row
  does not declare raises :class:`UndeclaredTransition`, so the table cannot lie.
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

from collections.abc import Callable
from typing import Any, NamedTuple

from .. import protocol as p
from ..diagnostics import Reconnected
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
from ..states import ConnectionState, session_info
from .acks import PendingAck
from .events import (
    AckTimedOut,
    CancelTimer,
    ConnectAborted,
    ConnectFinished,
    ConnectRequested,
    Decision,
    DisconnectRequested,
    Event,
    FrameReceived,
    LinkDown,
    LinkUp,
    SettleAck,
    StartTimer,
    Stream,
    TimerFired,
)
from .policy import retryable
from .steps import ATTEMPT_DEADLINE, CONNECT_DEADLINE, RETRY, CoreSteps

__all__ = [
    "TRANSITIONS",
    "Rule",
    "SessionCore",
    "UndeclaredTransition",
    "transition_table",
]

S = ConnectionState


class UndeclaredTransition(AssertionError):
    """A rule left the core in a state its row of :data:`TRANSITIONS` does not declare.

    A bug of the core, never of its caller: hence an ``AssertionError``, and not a
    :class:`~rxrealtime.RealtimeError` the shell would log and carry on after. It is
    an always-on check rather than an ``assert``, because ``python -O`` strips asserts
    and the table is what ``docs/architecture.md`` promises; it costs one membership
    test per control event, and the core never sees a tick.
    """


class SessionCore(CoreSteps):
    """One client session's decisions; see the module docstring for the rules.

    Its memory and the small steps its rules share come from :class:`CoreSteps`; here
    is what it decides: the entry point, the rules, and beside them the ack requests.
    """

    # -- the one entry point ---------------------------------------------------------

    def feed(self, event: Event) -> list[Decision]:
        """Apply ``event``; the decisions to carry out, in order.

        Everything that happens to a session reaches the core here, and only here moves
        its state. Raises :class:`~rxrealtime.RealtimeError` for a pair with no row (the
        caller's error: a second ``connect()``), :class:`UndeclaredTransition` when the
        rule ends in a state its row does not declare (the core's bug).
        """
        if self.closed or self._stale(event):
            return []
        before = self.state
        rule = TRANSITIONS[before].get(type(event))
        if rule is None:
            if isinstance(event, ConnectRequested):
                raise RealtimeError(f"connect() called while the session is {before}")
            raise RealtimeError(f"{type(event).__name__} is not allowed while {before}")
        self._out = []
        rule.run(self, event)
        out, self._out = self._out, []
        if self.state not in rule.outcomes:
            declared = ", ".join(map(str, rule.outcomes))
            raise UndeclaredTransition(
                f"{rule.name} ({type(event).__name__} while {before}) left the core "
                f"{self.state}; its row declares only {declared}"
            )
        return out

    # -- the ack book: two calls beside feed, not events --------------------------------

    def request(
        self, kind: str, key: str | None, remember: object = None, *, link: int | None = None
    ) -> tuple[PendingAck, list[Decision]]:
        """Book a prompt (``key``: its text) or image request; raises if it cannot be sent.

        With ``remember``, a successful ack makes it what the next link restores. ``link``
        names the link being opened when the shell restores prompt and image on it (in
        any state); a user's request needs an open link in a usable state.

        Not an event: it moves no state and has no row (it opens an entry of the
        :class:`~rxrealtime.core.acks.AckBook` and a timer), its caller needs at once
        an answer no decision carries (the ack whose id keys the future it awaits), and
        a refusal is raised to that caller. What follows comes back through
        :meth:`feed`: the ack frame (:class:`FrameReceived`), its timeout
        (:class:`AckTimedOut`), a lost link.
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
        """The request was never sent (the socket refused it) or its caller gave up:
        forget it and its timer. Not an event either: ack-book upkeep that moves no
        state, the undoing of a :meth:`request` by the same caller."""
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
            self._emit(Stream.DIAGNOSTICS, Reconnected(link.attempt, round(downtime, 3)))

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
                self._emit(Stream.SESSION_STARTED, self.info)
        elif isinstance(frame, p.PromptAck):
            self._settle(self.acks.settle("prompt", frame.prompt), frame, "prompt")
            self._emit(Stream.PROMPT_ACKS, frame)
        elif isinstance(frame, p.SetImageAck):
            self._settle(self.acks.settle("image", None), frame, "image")
            self._emit(Stream.IMAGE_ACKS, frame)
        elif isinstance(frame, p.GenerationStarted):
            link.generation_started = True
            if self.state is S.CONNECTED:
                self._set(S.GENERATING)
            self._emit(Stream.GENERATION_STARTED, frame)
        elif isinstance(frame, p.GenerationEnded):
            link.ended = frame
            self._emit(Stream.GENERATION_ENDED, frame)
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


# -- the table -------------------------------------------------------------------------


class Rule(NamedTuple):
    """A row of :data:`TRANSITIONS`: the rule function and the states it may lead to.

    ``run`` is the function itself, an unbound method of :class:`SessionCore` (a rule
    needs the core's private steps), so a renamed rule fails at import and not at the
    first event that needs it. ``outcomes`` is exact: every state the core may be in
    when ``run`` returns, the one it started in included if it may stay there;
    :meth:`SessionCore.feed` checks it on every event.
    """

    run: Callable[[SessionCore, Any], None]
    outcomes: tuple[ConnectionState, ...]

    @property
    def name(self) -> str:
        return self.run.__name__.lstrip("_")


_CLOSE = Rule(SessionCore._disconnect, (S.DISCONNECTED,))

TRANSITIONS: dict[ConnectionState, dict[type[Event], Rule]] = {
    S.DISCONNECTED: {
        ConnectRequested: Rule(SessionCore._connect, (S.CONNECTING,)),
        DisconnectRequested: _CLOSE,
    },
    S.CONNECTING: {
        LinkUp: Rule(SessionCore._link_up, (S.CONNECTED, S.GENERATING)),
        LinkDown: Rule(SessionCore._attempt_failed, (S.CONNECTING, S.DISCONNECTED)),
        FrameReceived: Rule(SessionCore._frame, (S.CONNECTING, S.DISCONNECTED)),
        TimerFired: Rule(SessionCore._timer, (S.CONNECTING, S.DISCONNECTED)),
        AckTimedOut: Rule(SessionCore._ack_timed_out, (S.CONNECTING,)),
        ConnectAborted: Rule(SessionCore._abort_connect, (S.DISCONNECTED,)),
        DisconnectRequested: _CLOSE,
    },
    S.CONNECTED: {
        LinkDown: Rule(SessionCore._link_lost, (S.RECONNECTING, S.DISCONNECTED)),
        FrameReceived: Rule(SessionCore._frame, (S.CONNECTED, S.GENERATING, S.DISCONNECTED)),
        AckTimedOut: Rule(SessionCore._ack_timed_out, (S.CONNECTED,)),
        DisconnectRequested: _CLOSE,
    },
    S.GENERATING: {
        LinkDown: Rule(SessionCore._link_lost, (S.RECONNECTING, S.DISCONNECTED)),
        FrameReceived: Rule(SessionCore._frame, (S.GENERATING, S.DISCONNECTED)),
        AckTimedOut: Rule(SessionCore._ack_timed_out, (S.GENERATING,)),
        DisconnectRequested: _CLOSE,
    },
    S.RECONNECTING: {
        LinkUp: Rule(SessionCore._link_up, (S.CONNECTED, S.GENERATING)),
        LinkDown: Rule(SessionCore._attempt_failed, (S.RECONNECTING, S.DISCONNECTED)),
        FrameReceived: Rule(SessionCore._frame, (S.RECONNECTING, S.DISCONNECTED)),
        TimerFired: Rule(SessionCore._timer, (S.RECONNECTING, S.DISCONNECTED)),
        AckTimedOut: Rule(SessionCore._ack_timed_out, (S.RECONNECTING,)),
        DisconnectRequested: _CLOSE,
    },
}
"""(state, event type) -> rule. ``frame`` moves on only for ``error`` frames (a
permanent one loses the link) and ``generation_started`` (connected -> generating)."""


def transition_table() -> list[tuple[str, str, str, str]]:
    """The rows of :data:`TRANSITIONS` as text: state, event, rule, possible next states.

    ``docs/architecture.md`` prints this table, so the picture cannot drift from the code.
    """
    rows = []
    for state, rules in TRANSITIONS.items():
        for event, rule in rules.items():
            outcomes = ", ".join(str(s) for s in rule.outcomes)
            rows.append((str(state), event.__name__, rule.name, outcomes))
    return rows
