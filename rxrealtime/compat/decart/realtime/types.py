"""The vendor SDK's realtime options and state names (``decart.realtime.types``).

:class:`RealtimeConnectOptions` is a plain dataclass, as the vendor's is; the facade
checks it when ``RealtimeClient.connect`` is called, before any I/O, and a wrong field
raises :class:`~rxrealtime.compat.decart.errors.InvalidInputError` naming it (the
vendor fails later, on the first attribute it cannot use).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..models import ModelDefinition, RealtimeSpeed
from ..types import ModelState

__all__ = ["ConnectionState", "RealtimeConnectOptions", "RealtimeSpeed", "VideoCodec"]

ConnectionState = Literal["connecting", "connected", "generating", "disconnected", "reconnecting"]
"""The states ``connection_change`` reports, as strings."""

VideoCodec = Literal["h264", "vp9"]
"""The codec to publish the local track with."""


@dataclass
class RealtimeConnectOptions:
    """How to connect: the model, the callback that gets the generated video track (a
    ``livekit.rtc.RemoteVideoTrack``, again after every reconnect), and optionally the
    initial prompt or image, the resolution, the codec and the speed tier."""

    model: ModelDefinition[Any]
    on_remote_stream: Callable[[Any], None]
    initial_state: ModelState | None = None
    resolution: Literal["720p", "1080p"] | None = None
    preferred_video_codec: VideoCodec = "h264"
    speed: RealtimeSpeed | None = None
