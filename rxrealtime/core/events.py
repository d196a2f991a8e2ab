"""What the session core is fed and what it answers: plain, frozen values.

Events come from the shell (something happened); decisions go back to it (do this).
Neither knows about sockets or tasks, so a test can build any sequence of events and
compare the decisions with ``==``. :mod:`rxrealtime.core.machine` holds the rules.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .. import protocol as p
from ..exceptions import RealtimeError
from ..states import ConnectionState

__all__ = [
    "AckTimedOut",
    "CancelTimer",
    "CloseForGood",
    "CloseLink",
    "ConnectAborted",
    "ConnectFinished",
    "ConnectRequested",
    "Decision",
    "DisconnectRequested",
    "Emit",
    "Event",
    "FailAck",
    "FrameReceived",
    "LinkDown",
    "LinkUp",
    "OpenLink",
    "SetState",
    "SettleAck",
    "StartTimer",
    "Stream",
    "TimerFired",
]


# -- events (shell -> core) ----------------------------------------------------------


class Event:
    """Something that happened; the core decides what follows."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class ConnectRequested(Event):
    """``connect()``: ``prompt`` is (text, enhance) and ``image`` base64, both optional."""

    prompt: tuple[str, bool] | None = None
    image: str | None = None


@dataclass(frozen=True, slots=True)
class LinkUp(Event):
    """The link opened by :class:`OpenLink` carries media (or is all it needs to be);
    ``at`` is when, on the shell's monotonic clock."""

    link: int
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class LinkDown(Event):
    """The link failed to open, or died: socket closed, media failed, bad answer...

    ``at`` is when, on the shell's monotonic clock (for the reconnect budget).
    """

    link: int
    error: RealtimeError
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class FrameReceived(Event):
    """A control frame of the link: session_id, acks, generation_*, error."""

    link: int
    frame: p.ServerMessage


@dataclass(frozen=True, slots=True)
class TimerFired(Event):
    """A timer of :class:`StartTimer` ran out."""

    timer: str


@dataclass(frozen=True, slots=True)
class AckTimedOut(Event):
    """No acknowledgement for request ``ack`` in time."""

    ack: int


@dataclass(frozen=True, slots=True)
class DisconnectRequested(Event):
    """``disconnect()``: close for good."""


@dataclass(frozen=True, slots=True)
class ConnectAborted(Event):
    """The caller of ``connect()`` was cancelled before it finished."""


# -- decisions (core -> shell) -------------------------------------------------------


class Decision:
    """Something the shell must do, in the order given."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class SetState(Decision):
    state: ConnectionState


class Stream(enum.Enum):
    """The session streams the core publishes on: the target of an :class:`Emit`.

    A closed set rather than stream names, so that a misspelt target is a type error
    and not a ``KeyError`` at run time; the shell maps each member to its stream once,
    when it is built, and a test holds that map to ``SessionStreams``. The value is
    the stream's attribute name there, for reading.
    """

    ERRORS = "errors"
    DIAGNOSTICS = "diagnostics"
    SESSION_STARTED = "session_started"
    PROMPT_ACKS = "prompt_acks"
    IMAGE_ACKS = "image_acks"
    GENERATION_STARTED = "generation_started"
    GENERATION_ENDED = "generation_ended"


@dataclass(frozen=True, slots=True)
class Emit(Decision):
    """Publish ``value`` on the session's stream ``stream``."""

    stream: Stream
    value: Any


@dataclass(frozen=True, slots=True)
class OpenLink(Decision):
    """Open link number ``link``: socket, then restore image and prompt, then media."""

    link: int
    attempt: int
    image: str | None
    prompt: tuple[str, bool] | None


@dataclass(frozen=True, slots=True)
class CloseLink(Decision):
    """Tear link ``link`` down; with ``drain_s``, first finish the closing handshake."""

    link: int
    drain_s: float = 0.0


@dataclass(frozen=True, slots=True)
class StartTimer(Decision):
    """After ``delay_s``, feed ``fire``; a timer of the same ``name`` is replaced."""

    name: str
    delay_s: float
    fire: Event


@dataclass(frozen=True, slots=True)
class CancelTimer(Decision):
    name: str


@dataclass(frozen=True, slots=True)
class SettleAck(Decision):
    """Request ``ack`` got its acknowledgement ``frame`` (successful)."""

    ack: int
    frame: p.PromptAck | p.SetImageAck


@dataclass(frozen=True, slots=True)
class FailAck(Decision):
    """Request ``ack`` failed with ``error`` (timeout, rejection, lost link)."""

    ack: int
    error: RealtimeError


@dataclass(frozen=True, slots=True)
class ConnectFinished(Decision):
    """The pending ``connect()`` returns (``error`` is None) or raises ``error``."""

    error: RealtimeError | None = None


@dataclass(frozen=True, slots=True)
class CloseForGood(Decision):
    """Nothing will revive the session: finish teardown, then complete every stream."""
