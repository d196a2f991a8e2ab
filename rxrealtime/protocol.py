"""The wire protocol of docs/protocol.md as msgspec tagged structs: pure, no I/O.

The two unions below *are* the protocol tables. The client, the embedded server, the
tests, the fuzzers and the benchmarks all share these structs and the two module-level
decoders, which are built once: decoding a frame is one call into msgspec.

Structs are frozen (safe to hand to many subscribers) and, where they hold nothing that
could form a reference cycle, ``gc=False`` so that millions of ticks cost the garbage
collector nothing.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated

import msgspec

from .exceptions import InvalidToken, ProtocolError

__all__ = [
    "MAX_BILLED_SECONDS",
    "Answer",
    "ClientMessage",
    "ErrorMessage",
    "GenerationEnded",
    "GenerationStarted",
    "GenerationTick",
    "IceCandidate",
    "IceCandidateMessage",
    "IceRestart",
    "IncomingMessage",
    "LivekitJoin",
    "LivekitRoomInfo",
    "Offer",
    "OutgoingMessage",
    "PromptAck",
    "PromptMessage",
    "QueuePosition",
    "Ready",
    "RoomTarget",
    "ServerMessage",
    "SessionIdMessage",
    "SetImageAck",
    "SetImageMessage",
    "SubscribeTarget",
    "TurnConfig",
    "decode",
    "decode_client_message",
    "decode_unchecked",
    "encode",
    "make_room_token",
    "make_subscribe_token",
    "parse_any_subscribe_token",
    "parse_subscribe_token",
]


class _Frame(msgspec.Struct, frozen=True, tag_field="type", forbid_unknown_fields=False):
    """Base of every frame: ``type`` is the tag, unknown fields are ignored."""


# -- shared payloads ---------------------------------------------------------------

MAX_BILLED_SECONDS = 10_000_000
"""The most billed seconds a tick may carry (about 115 days of one server session): a
larger value is nonsense from a broken server and is refused at decode."""

BilledSeconds = Annotated[int, msgspec.Meta(ge=0, le=MAX_BILLED_SECONDS)]
Count = Annotated[int, msgspec.Meta(ge=0)]


class IceCandidate(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """One ICE candidate, as ``RTCIceCandidate`` describes it (the payload of
    :class:`IceCandidateMessage`)."""

    candidate: str
    sdpMLineIndex: int | None = None
    sdpMid: str | None = None


class TurnConfig(msgspec.Struct, frozen=True, gc=False):
    """The TURN server an :class:`IceRestart` asks the client to use; ``credential`` is a
    secret (never in a repr)."""

    username: str
    credential: str
    server_url: str

    def __repr__(self) -> str:
        # The TURN credential is a secret like an API key.
        return (
            f"TurnConfig(username={self.username!r}, credential='***', "
            f"server_url={self.server_url!r})"
        )


# -- both directions ---------------------------------------------------------------


class IceCandidateMessage(_Frame, frozen=True, tag="ice-candidate"):
    """``ice-candidate``, both directions: a trickled ICE candidate of the peer connection.
    The client queues those that arrive before the answer is applied."""

    candidate: IceCandidate


# -- client to server --------------------------------------------------------------


class Offer(_Frame, frozen=True, tag="offer", gc=False):
    """``offer``, client to server: the SDP offer of the client's peer connection, once per
    peer connection (again after an ``ice-restart``)."""

    sdp: str


class PromptMessage(_Frame, frozen=True, tag="prompt", gc=False):
    """``prompt``, client to server: a new prompt (1 to 1000 characters, not blank),
    answered by a :class:`PromptAck` echoing it."""

    prompt: str
    enhance_prompt: bool = True


class SetImageMessage(_Frame, frozen=True, tag="set_image", omit_defaults=True, gc=False):
    """``set_image``, client to server: a reference image as base64 (``None`` clears it),
    optionally with a prompt; answered by a :class:`SetImageAck`."""

    # ``image_data`` has no default, so it is always sent, as null to clear the image;
    # the optional fields are omitted rather than sent as null (docs/protocol.md).
    image_data: str | None
    prompt: str | None = None
    enhance_prompt: bool | None = None

    def __repr__(self) -> str:
        size = "None" if self.image_data is None else f"<{len(self.image_data)} chars>"
        return f"SetImageMessage(image_data={size}, prompt={self.prompt!r})"


class LivekitJoin(_Frame, frozen=True, tag="livekit_join", gc=False):
    """Ask for a LiveKit room instead of an SDP offer/answer (the service's current media
    negotiation); the server answers with :class:`LivekitRoomInfo`."""


# -- server to client --------------------------------------------------------------


class LivekitRoomInfo(_Frame, frozen=True, tag="livekit_room_info", gc=False):
    """Where the media goes: the LiveKit server, an access token and the room to join."""

    livekit_url: str
    token: str
    room_name: str
    session_id: str = ""

    def __repr__(self) -> str:
        # The access token lets anyone join the room: a secret like an API key.
        return (
            f"LivekitRoomInfo(livekit_url={self.livekit_url!r}, token='***', "
            f"room_name={self.room_name!r}, session_id={self.session_id!r})"
        )


class Answer(_Frame, frozen=True, tag="answer", gc=False):
    """``answer``, server to client: the SDP answer to the client's :class:`Offer`."""

    sdp: str


class SessionIdMessage(_Frame, frozen=True, tag="session_id", gc=False):
    """``session_id``, server to client: the id of the new server session and the server
    that runs it (what a subscribe token names); published as ``session_started``."""

    session_id: str
    server_ip: str
    server_port: int


class Ready(_Frame, frozen=True, tag="ready", gc=False):
    """``ready``, server to client: legacy, carries nothing; rxrealtime ignores it."""


class PromptAck(_Frame, frozen=True, tag="prompt_ack", gc=False):
    """``prompt_ack``, server to client: the answer to a prompt (matched by its text);
    ``success: false`` comes with an ``error`` and is a ``RequestRejected`` for the caller."""

    prompt: str
    success: bool
    error: str | None = None


class SetImageAck(_Frame, frozen=True, tag="set_image_ack", gc=False):
    """``set_image_ack``, server to client: the answer to the oldest pending image;
    ``success: false`` comes with an ``error``."""

    success: bool
    error: str | None = None


class GenerationStarted(_Frame, frozen=True, tag="generation_started", gc=False):
    """``generation_started``, server to client: media flows and generation (and billing)
    has begun; the session is ``generating``."""


class GenerationTick(_Frame, frozen=True, tag="generation_tick", gc=False):
    """``generation_tick``, server to client: ``seconds`` is the *cumulative* billed
    seconds of the current server session (0 to :data:`MAX_BILLED_SECONDS`), restarting at
    0 with every new server session; totals across reconnects come from
    ``rxrealtime.operators.billed_seconds``."""

    seconds: BilledSeconds


class GenerationEnded(_Frame, frozen=True, tag="generation_ended", gc=False):
    """``generation_ended``, server to client: the server ended generation after
    ``seconds`` billed seconds, for ``reason``; the session is not reconnected."""

    seconds: BilledSeconds
    reason: str


class QueuePosition(_Frame, frozen=True, tag="queue_position", gc=False):
    """``queue_position``, server to client: waiting for capacity, at ``position`` of
    ``queue_size`` (both 0 or more)."""

    position: Count
    queue_size: Count


class IceRestart(_Frame, frozen=True, tag="ice-restart"):
    """``ice-restart``, server to client: rebuild the peer connection with the given TURN
    server and offer again (not a reconnect: the server session stays)."""

    turn_config: TurnConfig


class ErrorMessage(_Frame, frozen=True, tag="error", gc=False):
    """``error``, server to client: ``error`` is the text; a permanent one (``invalid api
    key``, ``unauthorized``...) becomes an ``AuthError``, any other a ``ServerError``."""

    error: str


ServerMessage = (
    Answer
    | IceCandidateMessage
    | SessionIdMessage
    | Ready
    | PromptAck
    | SetImageAck
    | GenerationStarted
    | GenerationTick
    | GenerationEnded
    | QueuePosition
    | IceRestart
    | ErrorMessage
    | LivekitRoomInfo
)
"""Every frame a server may send: what ``decode`` returns."""

ClientMessage = Offer | IceCandidateMessage | PromptMessage | SetImageMessage | LivekitJoin
"""Every frame a client may send: what ``decode_client_message`` returns."""

IncomingMessage = ServerMessage
"""Another name for :data:`ServerMessage`: what a client receives."""
OutgoingMessage = ClientMessage
"""Another name for :data:`ClientMessage`: what a client sends."""

_server_decoder: msgspec.json.Decoder[ServerMessage] = msgspec.json.Decoder(ServerMessage)
_client_decoder: msgspec.json.Decoder[ClientMessage] = msgspec.json.Decoder(ClientMessage)
_encoder = msgspec.json.Encoder()

decode_unchecked: Callable[[bytes | str], ServerMessage] = _server_decoder.decode
""":func:`decode` without its error translation, for the session's read loop.

It is the module-level decoder's own (C) method: no Python frame per call, which is a
quarter of the cost of decoding a tick. On a bad frame it raises msgspec's errors
(or ``TypeError``/``ValueError``), never :class:`ProtocolError`; a caller catches those
and calls :func:`decode` on the same frame to get the :class:`ProtocolError`.
"""


def decode(frame: bytes | str) -> ServerMessage:
    """Decode one server frame (text or UTF-8 bytes) into its struct.

    Raises :class:`ProtocolError`, and nothing else, for malformed JSON, a missing or
    unknown ``type``, a missing field or a field of the wrong type.
    """
    try:
        # The bound method through one module global: a cached global load per call
        # instead of a global plus an attribute lookup, ~10 % of a tick's decode.
        return decode_unchecked(frame)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError too
        raise ProtocolError(str(exc), frame) from None
    except (TypeError, UnicodeError, ValueError) as exc:
        raise ProtocolError(f"undecodable frame: {exc}", _safe(frame)) from None


def decode_client_message(frame: bytes | str) -> ClientMessage:
    """Decode one client frame, as a server does; same error contract as :func:`decode`."""
    try:
        return _client_decoder.decode(frame)
    except msgspec.DecodeError as exc:
        raise ProtocolError(str(exc), frame) from None
    except (TypeError, UnicodeError, ValueError) as exc:
        raise ProtocolError(f"undecodable frame: {exc}", _safe(frame)) from None


def encode(message: ServerMessage | ClientMessage) -> bytes:
    """Encode any frame of either direction to its JSON bytes."""
    return _encoder.encode(message)


def _safe(frame: object) -> bytes | str | None:
    return frame if isinstance(frame, (bytes, str)) else None


# -- subscribe tokens --------------------------------------------------------------


class SubscribeTarget(msgspec.Struct, frozen=True, gc=False):
    """What a subscribe token names: a server session and the server that runs it."""

    sid: str
    ip: str
    port: int


_token_decoder = msgspec.json.Decoder(SubscribeTarget)


def make_subscribe_token(session_id: str, server_ip: str, server_port: int) -> str:
    """``urlsafe_base64(json({"sid", "ip", "port"}))`` as docs/protocol.md defines it."""
    payload = _encoder.encode(SubscribeTarget(sid=session_id, ip=server_ip, port=server_port))
    return base64.urlsafe_b64encode(payload).decode("ascii")


class RoomTarget(msgspec.Struct, frozen=True, gc=False):
    """What a LiveKit-mode subscribe token names: the room of a running session."""

    room_name: str


_room_decoder = msgspec.json.Decoder(RoomTarget)


def make_room_token(room_name: str) -> str:
    """``urlsafe_base64(json({"room_name"}))``: the subscribe token of a LiveKit session."""
    payload = _encoder.encode(RoomTarget(room_name=room_name))
    return base64.urlsafe_b64encode(payload).decode("ascii")


def parse_any_subscribe_token(token: str) -> SubscribeTarget | RoomTarget:
    """A direct-peer token (``sid``/``ip``/``port``) or a LiveKit room token (``room_name``).

    Raises :class:`InvalidToken` saying what is wrong, before any network call.
    """
    raw = _token_bytes(token)
    try:
        room = _room_decoder.decode(raw)
    except msgspec.DecodeError:
        return parse_subscribe_token(token)
    if not room.room_name:
        raise InvalidToken("subscribe token has an empty room_name")
    return room


def _token_bytes(token: str) -> bytes:
    if not isinstance(token, str) or not token.strip():
        raise InvalidToken("subscribe token is empty")
    text = token.strip()
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("subscribe token is not urlsafe base64") from None


def parse_subscribe_token(token: str) -> SubscribeTarget:
    """Decode a subscribe token or raise :class:`InvalidToken` saying what is wrong."""
    raw = _token_bytes(token)
    try:
        target = _token_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise InvalidToken(f"subscribe token lacks sid/ip/port or has wrong types: {exc}") from None
    except msgspec.DecodeError:
        raise InvalidToken("subscribe token is not base64-encoded JSON") from None
    if not target.sid or not target.ip or not 0 < target.port < 65536:
        raise InvalidToken("subscribe token has an empty sid/ip or a port out of range")
    return target
