"""What travels on NATS: event frames (worker -> aggregator), stop commands (aggregator ->
workers) and the subjects they go to. Pure: no NATS, no I/O.

Event frames are compact msgspec MessagePack arrays, tagged by kind. Every frame carries
what the aggregator needs to total billing with no double count, whatever the order,
duplicates or redeliveries::

    ["tick", worker, client, key, sid, model, seq, at, seconds]

* ``client``: an id the publisher gives each client session it watches (stable, unique);
* ``key``: the fleet key, i.e. the session's *first* server session id (``""`` until
  known, the subject then says ``pending-<client>``);
* ``sid``: the *current* server session id; ``seconds`` is cumulative within it, so the
  fleet total is the sum over (key, sid) of the largest ``seconds`` seen;
* ``seq``: 1, 2, 3... per client; ``<client>-<seq>`` is the JetStream message id
  (``Nats-Msg-Id``), so a republish is dropped by the server's duplicate window, and
  the aggregator drops what still gets through twice;
* ``at``: the worker's wall clock (``time.time()``) when the event happened.

Trailing fields may be added later: decoders ignore extra trailing elements.

Stop commands are JSON (``{"reason": "manual"}`` is a valid one), so an operator can send
one with any NATS tool.

Subjects, with the default prefix ``rxrealtime``::

    rxrealtime.<worker>.<key or pending-client>.<tick|state|error|ended>   events
    rxrealtime.control.<worker>.<key>                                     stop one session
    rxrealtime.control.fleet                                              stop every session
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Annotated

import msgspec

from ..exceptions import ConfigError, ProtocolError
from ..protocol import MAX_BILLED_SECONDS
from ..states import ConnectionState

__all__ = [
    "KINDS",
    "EndedFrame",
    "ErrorFrame",
    "EventFrame",
    "StateFrame",
    "StopCommand",
    "Subjects",
    "TickFrame",
    "check_token",
    "decode_command",
    "decode_frame",
    "encode_command",
    "encode_frame",
    "msg_id",
    "new_client_id",
    "subject_token",
]

KINDS = ("tick", "state", "error", "ended")
"""The event kinds, as the last token of an event subject."""

CONTROL = "control"
"""The reserved second token of control subjects (no worker may be named so)."""

_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

Seconds = Annotated[int, msgspec.Meta(ge=0, le=MAX_BILLED_SECONDS)]
Text = Annotated[str, msgspec.Meta(max_length=256)]
Message = Annotated[str, msgspec.Meta(max_length=4096)]


class _Event(msgspec.Struct, frozen=True, array_like=True, tag_field="kind", gc=False):
    worker: Text
    client: Text
    key: Text
    sid: Text
    model: Text
    seq: Annotated[int, msgspec.Meta(ge=1)]
    at: float


class TickFrame(_Event, frozen=True, tag="tick"):
    """A billing tick: ``seconds`` billed so far in the server session ``sid``
    (cumulative, restarting at 0 with each new server session)."""

    seconds: Seconds


class StateFrame(_Event, frozen=True, tag="state"):
    """The session's connection ``state`` changed (and its state when first published)."""

    state: ConnectionState


class ErrorFrame(_Event, frozen=True, tag="error"):
    """An error on the session's ``errors``: ``type`` is its class name (e.g.
    ``ConnectionLost``), ``message`` its text."""

    type: Text
    message: Message


class EndedFrame(_Event, frozen=True, tag="ended"):
    """The server ended generation of ``sid`` after ``seconds`` billed seconds, for
    ``reason``; the session is not reconnected."""

    seconds: Seconds
    reason: Text


EventFrame = TickFrame | StateFrame | ErrorFrame | EndedFrame
"""Every event frame a worker publishes."""

KIND_OF: dict[type[_Event], str] = {
    TickFrame: "tick",
    StateFrame: "state",
    ErrorFrame: "error",
    EndedFrame: "ended",
}

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[EventFrame] = msgspec.msgpack.Decoder(EventFrame)


def encode_frame(frame: EventFrame) -> bytes:
    """``frame`` as the MessagePack array that travels on NATS (:func:`decode_frame` reads it)."""
    return _encoder.encode(frame)


def decode_frame(data: bytes) -> EventFrame:
    """Decode one event frame; anything malformed raises :class:`ProtocolError` only."""
    try:
        frame = _decoder.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError too
        raise ProtocolError(f"malformed fleet frame: {exc}", data) from None
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"undecodable fleet frame: {exc}", data) from None
    if isinstance(frame, (TickFrame, EndedFrame)) and not frame.sid:
        raise ProtocolError("malformed fleet frame: billing without a server session id", data)
    if not frame.client:
        raise ProtocolError("malformed fleet frame: no client id", data)
    return frame


def msg_id(frame: EventFrame) -> str:
    """The JetStream message id of a frame: unique per event, the same on a republish."""
    return f"{frame.client}-{frame.seq}"


def new_client_id() -> str:
    return uuid.uuid4().hex[:16]


# -- commands ----------------------------------------------------------------------


class StopCommand(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Disconnect one session (``worker`` and ``key``) or every session (``"*"``)."""

    reason: Message = "stopped by the fleet"
    worker: Text = "*"
    key: Text = "*"
    id: Text = ""
    billed_s: int | None = None
    budget_s: int | None = None
    at: float = 0.0

    @property
    def fleet_wide(self) -> bool:
        """Whether this command stops every session of every worker."""
        return self.worker == "*" and self.key == "*"

    def targets(self, worker: str, key: str | None) -> bool:
        """Whether this command names the session ``key`` of ``worker``."""
        if self.worker not in ("*", worker):
            return False
        return self.key == "*" or (key is not None and self.key == key)


_json = msgspec.json.Encoder()
_command_decoder = msgspec.json.Decoder(StopCommand)


def encode_command(command: StopCommand) -> bytes:
    return _json.encode(command)


def decode_command(data: bytes) -> StopCommand:
    """Decode a stop command; an empty payload is a bare "stop"."""
    if not data.strip():
        return StopCommand()
    try:
        return _command_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"malformed stop command: {exc}", data) from None


# -- subjects ----------------------------------------------------------------------


def check_token(value: str, what: str) -> str:
    """``value`` if it is a safe subject token (letters, digits, ``_``, ``-``)."""
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise ConfigError(
            f"{what} must be 1-128 letters, digits, '_' or '-' (it is a NATS subject "
            f"token), got {value!r}"
        )
    if value == CONTROL:
        raise ConfigError(f"{what} may not be {CONTROL!r}: that token names control subjects")
    return value


def subject_token(value: str) -> str:
    """Any text (a server's session id) made safe for a subject token."""
    return _UNSAFE.sub("_", value)[:128] or "_"


@dataclass(frozen=True)
class Subjects:
    """The subjects and stream of one fleet, from its ``prefix`` (``rxrealtime``)."""

    prefix: str = "rxrealtime"

    def __post_init__(self) -> None:
        parts = self.prefix.split(".") if isinstance(self.prefix, str) else [""]
        if not all(_TOKEN.fullmatch(p) for p in parts):
            raise ConfigError(
                f"subject_prefix must be dot-separated tokens of letters, digits, '_' or "
                f"'-', got {self.prefix!r}"
            )

    @property
    def stream(self) -> str:
        """The default JetStream stream name: ``RXREALTIME`` for ``rxrealtime``."""
        return re.sub(r"[^A-Z0-9_]", "_", self.prefix.upper())

    @property
    def all(self) -> str:
        """The filter of every subject of the fleet, events and control (``<prefix>.>``);
        the fleet's stream stores these."""
        return f"{self.prefix}.>"

    @property
    def events(self) -> str:
        """The filter of every event subject (control subjects also match: skip them)."""
        return f"{self.prefix}.*.*.*"

    def event(self, frame: EventFrame) -> str:
        """The subject ``frame`` is published to: ``<prefix>.<worker>.<key>.<kind>``
        (``pending-<client>`` in place of the key until it is known)."""
        key = subject_token(frame.key) if frame.key else f"pending-{frame.client}"
        return f"{self.prefix}.{frame.worker}.{key}.{KIND_OF[type(frame)]}"

    @property
    def control_fleet(self) -> str:
        """The subject of stop commands for every session (``<prefix>.control.fleet``)."""
        return f"{self.prefix}.{CONTROL}.fleet"

    def control(self, worker: str, key: str) -> str:
        """The subject of stop commands for the session ``key`` of ``worker``."""
        return f"{self.prefix}.{CONTROL}.{worker}.{subject_token(key)}"

    def control_of(self, worker: str) -> str:
        """What a worker subscribes to for commands naming one of its sessions."""
        return f"{self.prefix}.{CONTROL}.{worker}.*"

    def is_control(self, subject: str) -> bool:
        """Whether ``subject`` is a control subject (they also match :attr:`events`)."""
        return subject.startswith(f"{self.prefix}.{CONTROL}.")

    def key_token(self, subject: str) -> str:
        """The session token of an event subject (for reporting a malformed frame)."""
        rest = subject[len(self.prefix) + 1 :].split(".")
        return rest[1] if len(rest) == 3 else subject
