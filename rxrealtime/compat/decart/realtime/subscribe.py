"""View-only subscribers (``decart.realtime.subscribe``): tokens, options and the client.

``RealtimeClient.subscribe(base_url, api_key, SubscribeOptions(token, on_remote_stream))``
returns a :class:`SubscribeClient`: a :class:`rxrealtime.Subscriber` underneath, which
asks ``POST /watch-stream/{room}`` for credentials and joins the room without
publishing, exactly as the vendor's client does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._tokens import TokenPayload, decode_subscribe_token, encode_subscribe_token
from .bridge import BridgedClient

__all__ = [
    "SubscribeClient",
    "SubscribeOptions",
    "TokenPayload",
    "decode_subscribe_token",
    "encode_subscribe_token",
]


@dataclass
class SubscribeOptions:
    """The session to watch (its ``subscribe_token``) and the callback that gets its
    generated video track (a ``livekit.rtc.RemoteVideoTrack``)."""

    token: str
    on_remote_stream: Callable[[Any], None]


class SubscribeClient(BridgedClient):
    """A connected view-only subscriber: ``on``/``off`` for ``connection_change`` and
    ``error``, the state, ``disconnect()``, and the session's streams (``session``,
    ``streams``: its ``frames`` are the watched video, decoded)."""

    EVENTS = ("connection_change", "error")
