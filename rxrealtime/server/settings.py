"""What a reference server is told: where it listens, how it bills, how it misbehaves.

Settings and fault switches are plain pydantic models, apart from all I/O, so that the
CLI can validate ``rxrealtime serve`` options without starting aiohttp or aiortc.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["BAD_FRAMES", "STREAM_PATHS", "BadFrame", "Faults", "Media", "ServerSettings"]

STREAM_PATHS = ("/v1/stream", "/v1/avatar-live/stream")
"""Both paths a client may stream on (the avatar path is an alias in the protocol)."""


BadFrame = Literal["malformed", "unknown_type", "wrong_type", "binary", "oversized"]

BAD_FRAMES: dict[str, str | bytes] = {
    "malformed": '{"type": "generation_tick", "seconds": ',
    "unknown_type": '{"type": "teleport", "where": "mars"}',
    "wrong_type": '{"type": "generation_tick", "seconds": "many"}',
    "binary": b"\x00\x01\x02 not a text frame",
}
"""The fixed bad frames; ``oversized`` is built on demand (see :meth:`Faults.bad_frame`)."""


class Faults(BaseModel):
    """Misbehaviour to inject, for tests of the client's resilience.

    Mutable at run time (``server.faults.ack_delay_s = 2``): each switch is read when it
    matters, so a test can turn a fault on after the session is up. Every switch works in
    both media modes (``ServerSettings.media``) unless its text says otherwise.
    """

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, use_attribute_docstrings=True
    )

    reject_auth: bool = False
    """Answer every connection with ``error: invalid api key``, whatever the key."""
    refuse_first: int = Field(default=0, ge=0)
    """Refuse the first K connections with a (transient) capacity error."""
    drop_socket_after_s: float | None = Field(default=None, ge=0)
    """Abort the TCP connection of a generating session after this many seconds, no close frame."""
    close_peer_after_s: float | None = Field(default=None, ge=0)
    """Close the peer connection of a generating session after this many seconds.

    In LiveKit mode: remove the client from its room, as ``drop_room_after_s`` does."""
    drop_room_after_s: float | None = Field(default=None, ge=0)
    """Remove the client from the LiveKit room of a generating session after this many
    seconds (RoomService ``remove_participant``); the socket stays open. In aiortc mode:
    close the peer connection, as ``close_peer_after_s`` does."""
    drop_generated_frames: float = Field(default=0.0, ge=0.0, le=1.0)
    """Drop this fraction of the generated frames (chosen at random), so the client's
    frame rate, and its quality verdict, fall while ticks go on (aiortc mode)."""
    freeze_video_after_s: float | None = Field(default=None, ge=0)
    """Stop sending generated video this many seconds after generation starts, for
    ``freeze_video_for_s`` (a video stall: billing goes on; aiortc mode)."""
    freeze_video_for_s: float = Field(default=2.0, gt=0)
    """How long, in seconds, the video freeze of ``freeze_video_after_s`` lasts."""
    max_drops: int = Field(default=1, ge=0)
    """How many sessions the three switches above hit in all (0: every session)."""
    queue_for_s: float | None = Field(default=None, ge=0, le=600)
    """Hold a new session in the queue this long before answering its first offer or
    ``livekit_join``, with ``queue_position`` frames counting down to 1, five a second."""
    stall_ticks_after: int | None = Field(default=None, ge=0)
    """After this many ticks, stop sending ticks (billing goes on) for ``stall_ticks_for_s``."""
    stall_ticks_for_s: float = Field(default=2.0, ge=0)
    """How long, in seconds, the stall of ``stall_ticks_after`` lasts (once per session);
    its seconds are billed and show in the first tick after it."""
    bad_frames: tuple[BadFrame, ...] = ()
    """Bad frames sent after every ``bad_frames_every_n_ticks``-th tick."""
    bad_frames_every_n_ticks: int = Field(default=1, gt=0)
    """Send ``bad_frames`` after every N-th delivered tick (1: after each one)."""
    oversized_frame_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    """The ``oversized`` bad frame is an ``error`` frame padded with this many bytes (the
    default is above the client's default ``max_frame_bytes``)."""
    ack_delay_s: float = Field(default=0.0, ge=0)
    """Wait this long before answering ``prompt`` and ``set_image``."""
    fail_acks: bool = False
    """Answer ``prompt`` and ``set_image`` with ``success: false``."""
    ice_restart_after_s: float | None = Field(default=None, ge=0)
    """Send ``ice-restart`` (with ``turn_url``) this long after generation starts, once.

    Ignored in LiveKit mode, which has no peer connection of the server's to restart."""
    turn_url: str = "turn:127.0.0.1:9?transport=tcp"
    """The TURN server the ``ice-restart`` frame names; the default (loopback port 9)
    is no TURN server, only something for the client to apply."""
    stall_answer: bool = False
    """Never answer offers (the client's connect timeout fires).

    In LiveKit mode: never answer ``livekit_join`` (no ``livekit_room_info``)."""

    def bad_frame(self, kind: str) -> str | bytes:
        """The frame for ``kind``; an oversized one is as large as the switch says now."""
        if kind == "oversized":
            padding = "x" * self.oversized_frame_bytes
            return f'{{"type": "error", "error": "{padding}"}}'
        return BAD_FRAMES[kind]


Media = Literal["aiortc", "livekit"]


class ServerSettings(BaseModel):
    """How the embedded server listens, bills and misbehaves; checked before any I/O.

    ``port`` 0 picks a free port; ``api_key`` defaults to a random ``rt_...`` key; each
    tick, every ``tick_interval_s`` seconds, bills ``seconds_per_tick`` seconds.
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    api_key: SecretStr = Field(default_factory=lambda: SecretStr("rt_" + secrets.token_urlsafe(18)))
    tick_interval_s: float = Field(default=1.0, gt=0, le=3600)
    seconds_per_tick: int = Field(default=1, ge=1)
    credits_s: int | None = Field(default=None, ge=0)
    """Billed seconds a server session may generate before "insufficient credits"."""
    max_frame_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Frames above this are counted and ignored; 8x above it the socket is closed."""
    faults: Faults = Field(default_factory=Faults)
    tape: Path | None = None
    """Play the server's side of this recorded tape to each client instead of billing
    live (:mod:`rxrealtime.server.tape`)."""
    media: Media = "aiortc"
    """``aiortc``: answer SDP offers with the server's own peer connection. ``livekit``:
    also answer ``livekit_join`` with a room on a LiveKit server, joined by the server as
    ``inference-server-<n>``, and serve ``POST /watch-stream/{room}``."""
    livekit_url: str | None = None
    """An existing LiveKit server (``ws://`` or ``wss://``) for LiveKit mode; by default a
    local livekit-server is started on free loopback ports and stopped with the server."""
    livekit_key: str | None = None
    livekit_secret: SecretStr | None = None
    """The API key and secret of ``livekit_url`` (both required with it)."""

    @model_validator(mode="after")
    def _livekit_server_given_whole(self) -> ServerSettings:
        given = (self.livekit_key is not None, self.livekit_secret is not None)
        if self.livekit_url is None:
            if any(given):
                raise ValueError("livekit_key and livekit_secret need livekit_url")
            return self
        if not self.livekit_url.startswith(("ws://", "wss://", "http://", "https://")):
            raise ValueError("livekit_url must start with ws://, wss://, http:// or https://")
        secret = self.livekit_secret.get_secret_value() if self.livekit_secret else ""
        if not self.livekit_key or not secret:
            raise ValueError("livekit_url needs livekit_key and livekit_secret")
        return self
