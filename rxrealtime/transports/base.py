"""The seam between a session and the way its media travels.

A session's signaling (socket, prompts, acks, ticks, errors) is the same whatever
carries the video; only the media negotiation differs: an SDP offer/answer over the
socket and a direct aiortc peer today, a LiveKit room on the service's current
protocol. A :class:`MediaTransport` is that one difference. The session gives it a
:class:`MediaContext` (what it may do to the session) and routes to it the server frames
it declares in :attr:`MediaTransport.handles`; everything above (the core, the streams,
billing) never knows which transport runs. A new transport is a new module registered
in :data:`TRANSPORTS`, loaded on first use so that ``import rxrealtime`` loads none.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .. import protocol as p
from ..exceptions import ConfigError, RealtimeError
from ..quality import MediaCounters

__all__ = [
    "TRANSPORTS",
    "MediaContext",
    "MediaTransport",
    "SignalingOnly",
    "TransportSpec",
    "load_transport",
]


@dataclass
class MediaContext:
    """What a transport may do to its session, and what it needs to know.

    ``lost`` ends the link (the session decides whether to reconnect); ``problem``
    reports an error that does not (an unusable ICE candidate, say). ``identified``
    hands the session a frame of :attr:`MediaTransport.handles` that names the server
    session (LiveKit's ``livekit_room_info``) once the transport has checked and
    accepted it: a frame the transport declares reaches the transport only, so one
    it refuses is refused once, by it, and the session never announces it.
    """

    send: Callable[[p.ClientMessage], Awaitable[None]]
    lost: Callable[[RealtimeError], None]
    problem: Callable[[RealtimeError], None]
    track_received: Callable[[Any], None]
    frame_received: Callable[[Any], None]
    identified: Callable[[p.ServerMessage], None]
    local_track: Any = None
    """The user's video track (sent as is), or ``None`` for receive-only."""
    ice_servers: Sequence[dict[str, Any]] = field(default_factory=list)
    loopback: bool = False
    """The service is on this machine: media must not leave loopback either."""
    view_only: bool = False
    """A view-only subscriber: receive the generated video, publish nothing."""
    preferred_codec: str | None = None
    """``vp8`` or ``h264`` to offer first, or ``None`` for the transport's default."""
    video_backoff: bool = True
    """Drop frames before encoding while the event loop lags (see ``transports.pacing``)."""
    latency: Callable[[float], None] = field(default=lambda seconds: None)
    """Report one glass-to-glass sample (seconds) of a generated frame the transport
    matched to a frame it sent (LiveKit's frame metadata); a transport that cannot match
    frames never calls it, and the session reads the picture stamp instead."""
    media_timeout_s: float = 15.0
    """How long :meth:`MediaTransport.start` may wait for the generated video before it
    says so (a transport whose media never comes raises a clear error, not a timeout)."""


class MediaTransport(abc.ABC):
    """One link's media. Created per link, started once, closed once."""

    handles: ClassVar[tuple[type[p.ServerMessage], ...]] = ()
    """The server frames this transport consumes (routed to :meth:`on_frame`, and to
    nothing else: what the session should learn from one, the transport hands on)."""

    def __init__(self, context: MediaContext) -> None:
        self.context = context

    @abc.abstractmethod
    async def start(self) -> None:
        """Negotiate until media flows; raise a :class:`RealtimeError` if it cannot."""

    def on_frame(self, frame: p.ServerMessage) -> None:  # noqa: B027 - optional hook
        """A server frame of :attr:`handles` arrived on the socket."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release everything; called once, also after a failed :meth:`start`."""

    async def sample(self) -> tuple[MediaCounters, Any]:
        """Cumulative media counters now, and the transport's raw stats report (if any).

        The session samples this every ``stats_interval_s`` while anyone observes
        ``stats``, ``raw_stats`` or ``quality``; frame counts are the session's own.
        """
        return MediaCounters(), None


class SignalingOnly(MediaTransport):
    """No media at all: the link is up as soon as the socket is.

    For tools that only watch a session's events and for measuring the signaling path
    alone; a service normally starts generating (and ticking) only once media flows.
    """

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class TransportSpec:
    """A registered transport: where its class lives (``module:Class``, imported on first
    use) and the query parameters its negotiation adds to the signaling URL."""

    target: str
    query: dict[str, str] = field(default_factory=dict)


TRANSPORTS: dict[str, TransportSpec] = {
    "aiortc": TransportSpec("rxrealtime.transports.aiortc:AiortcTransport"),
    "livekit": TransportSpec(
        "rxrealtime.transports.livekit:LivekitTransport", {"livekit_early_room_info": "true"}
    ),
    "none": TransportSpec("rxrealtime.transports.base:SignalingOnly"),
}
"""Transport name -> :class:`TransportSpec`."""


def load_transport(name: str) -> type[MediaTransport]:
    """The transport class registered as ``name``."""
    try:
        module_name, _, class_name = TRANSPORTS[name].target.partition(":")
    except KeyError:
        known = ", ".join(sorted(TRANSPORTS))
        raise ConfigError(f"unknown media transport {name!r}; known: {known}") from None
    cls: type[MediaTransport] = getattr(importlib.import_module(module_name), class_name)
    return cls
