"""User-facing session options, validated by pydantic so mistakes get precise messages.

Validation runs in ``Session(...)``, before any I/O; a bad option raises
:class:`~rxrealtime.ConfigError` whose text never contains the API key.
"""

from __future__ import annotations

import os
import platform
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from ._version import __version__
from .exceptions import ConfigError
from .quality import QualityThresholds
from .transports.base import TRANSPORTS

__all__ = ["IceServer", "ReconnectPolicy", "SessionOptions", "default_user_agent"]

API_KEY_ENV = "RXREALTIME_API_KEY"
MAX_PROMPT_CHARS = 1000


def default_user_agent() -> str:
    return f"rxrealtime/{__version__} python/{platform.python_version()}"


class IceServer(BaseModel):
    """A STUN or TURN server, as ``RTCIceServer`` takes it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    urls: str | list[str]
    username: str | None = None
    credential: SecretStr | None = None

    def as_dict(self) -> dict[str, Any]:
        """The server as aiortc's ``RTCIceServer`` takes it, credential in clear."""
        return {
            "urls": self.urls,
            "username": self.username,
            "credential": self.credential.get_secret_value() if self.credential else None,
        }


class ReconnectPolicy(BaseModel):
    """Exponential backoff after an unexpected loss (docs/protocol.md's production defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    max_attempts: int = Field(default=5, ge=0, le=1000)
    initial_delay_s: float = Field(default=1.0, ge=0.0, le=3600.0)
    max_delay_s: float = Field(default=10.0, ge=0.0, le=3600.0)
    multiplier: float = Field(default=2.0, ge=1.0, le=100.0)
    budget: int = Field(default=10, ge=1, le=10_000)
    """At most this many reconnects within ``budget_window_s``, then the session closes
    for good: a server that accepts and then kills every link would otherwise open a
    new billed server session forever (``max_attempts`` counts failures in a row)."""
    budget_window_s: float = Field(default=300.0, gt=0, le=86_400)
    jitter: Literal["none", "full", "decorrelated"] = "full"
    """Spread each wait (``full``: uniformly between 0 and the delay), so sessions that
    lost their network together do not reconnect in lockstep."""

    def delays(self) -> list[float]:
        """The wait before each attempt, in order."""
        if not self.enabled:
            return []
        out, delay = [], self.initial_delay_s
        for _ in range(self.max_attempts):
            out.append(min(delay, self.max_delay_s))
            delay *= self.multiplier
        return out


class SessionOptions(BaseModel):
    """Every keyword option of ``Session(...)``, validated before any I/O.

    A bad value raises :class:`~rxrealtime.ConfigError` naming the option (never the API
    key). Times are in seconds and sizes in bytes; the defaults are those of
    docs/protocol.md ("Client-side limits"): ``connect_timeout_s`` bounds the first
    ``connect()`` (retries included) and each reconnect attempt, the ack timeouts bound
    ``set_prompt``/``set_image`` (:class:`~rxrealtime.AckTimeout`), ``max_frame_bytes``
    bounds a server frame, ``reconnect`` is the :class:`ReconnectPolicy`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    api_key: SecretStr
    ice_servers: list[IceServer] = Field(default_factory=list)
    resolution: Literal["720p", "1080p"] | None = None
    user_agent: str = Field(default_factory=default_user_agent, min_length=1, max_length=256)
    connect_timeout_s: float = Field(default=30.0, gt=0, le=600)
    prompt_ack_timeout_s: float = Field(default=15.0, gt=0, le=600)
    image_ack_timeout_s: float = Field(default=30.0, gt=0, le=600)
    max_prompt_chars: int = Field(default=MAX_PROMPT_CHARS, gt=0)
    max_image_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_frame_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Larger server frames are reported as ProtocolError and skipped; 8x larger closes."""
    stats_interval_s: float | None = Field(default=1.0, gt=0)
    heartbeat_s: float | None = Field(default=15.0, gt=0)
    """WebSocket ping interval: a half-open connection is noticed (and reconnected)."""
    reconnect: ReconnectPolicy = Field(default_factory=ReconnectPolicy)
    quality_thresholds: QualityThresholds | None = None
    """Where ``session.quality`` turns fair, poor and critical (defaults: the table in
    :mod:`rxrealtime.quality`)."""
    video_stall_s: float | None = Field(default=2.0, gt=0, le=3600)
    """Generated video silent this long while generating is a ``VideoStall`` on
    ``diagnostics`` (``None``: not watched)."""
    max_tick_step_s: float = Field(default=60.0, gt=0, le=86_400)
    """A tick may move ahead of the last one by at most this plus twice the time elapsed
    since it; a larger jump is a ProtocolError on ``errors`` and is not billed."""
    preferred_codec: Literal["vp8", "h264"] | None = None
    """The video codec to offer first (aiortc: the transceiver's codec preferences;
    LiveKit: the published track's codec); ``None``: the transport's default."""
    video_backoff: bool = True
    """Drop frames before they are encoded while the event loop lags (aiortc), so billing
    ticks stay prompt on a saturated machine and video degrades instead
    (:mod:`rxrealtime.transports.pacing`); ``False`` sends every frame."""
    speed: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]{0,15}$")
    """Sent as the ``speed`` query parameter (e.g. ``fast``), when set."""
    transport: str = "aiortc"
    """How media travels: ``"aiortc"`` (a direct WebRTC peer) or ``"none"`` (signaling
    only: events without video)."""

    @field_validator("transport")
    @classmethod
    def _known_transport(cls, value: str) -> str:
        if value not in TRANSPORTS:
            raise ValueError(f"unknown media transport {value!r}; known: {', '.join(TRANSPORTS)}")
        return value

    @field_validator("api_key")
    @classmethod
    def _key_not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError(f"api key is empty; pass api_key= or set {API_KEY_ENV}")
        return value


def build_options(api_key: str | None, **options: Any) -> SessionOptions:
    """Validate options; the key comes from ``api_key`` or ``RXREALTIME_API_KEY``."""
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    if key is None:
        raise ConfigError(f"no API key: pass api_key= or set {API_KEY_ENV}")
    try:
        return SessionOptions(api_key=SecretStr(key), **options)
    except ValidationError as exc:
        raise ConfigError(f"invalid session options: {describe_validation_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """pydantic's complaints as one line, without the input values.

    pydantic's own message echoes the inputs, and an input may be an API key.
    """
    return "; ".join(
        f"{'.'.join(str(part) for part in err['loc']) or 'options'}: {err['msg']}"
        for err in exc.errors()
    )
