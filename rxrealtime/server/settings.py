"""What a reference server is told: where it listens, how it bills, how it misbehaves.

Settings and fault switches are plain pydantic models, apart from all I/O, so that the
CLI can validate ``rxrealtime serve`` options without starting aiohttp or aiortc.
"""

from __future__ import annotations

import secrets
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["BAD_FRAMES", "STREAM_PATHS", "BadFrame", "Faults", "ServerSettings"]

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
    matters, so a test can turn a fault on after the session is up.
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
    """Close the peer connection of a generating session after this many seconds."""
    max_drops: int = Field(default=1, ge=0)
    """How many sessions the two switches above hit in all (0: every session)."""
    stall_ticks_after: int | None = Field(default=None, ge=0)
    """After this many ticks, stop sending ticks (billing goes on) for ``stall_ticks_for_s``."""
    stall_ticks_for_s: float = Field(default=2.0, ge=0)
    bad_frames: tuple[BadFrame, ...] = ()
    """Bad frames sent after every ``bad_frames_every_n_ticks``-th tick."""
    bad_frames_every_n_ticks: int = Field(default=1, gt=0)
    oversized_frame_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    ack_delay_s: float = Field(default=0.0, ge=0)
    """Wait this long before answering ``prompt`` and ``set_image``."""
    fail_acks: bool = False
    """Answer ``prompt`` and ``set_image`` with ``success: false``."""
    ice_restart_after_s: float | None = Field(default=None, ge=0)
    """Send ``ice-restart`` (with ``turn_url``) this long after generation starts, once."""
    turn_url: str = "turn:127.0.0.1:9?transport=tcp"
    stall_answer: bool = False
    """Never answer offers (the client's connect timeout fires)."""

    def bad_frame(self, kind: str) -> str | bytes:
        """The frame for ``kind``; an oversized one is as large as the switch says now."""
        if kind == "oversized":
            padding = "x" * self.oversized_frame_bytes
            return f'{{"type": "error", "error": "{padding}"}}'
        return BAD_FRAMES[kind]


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
