"""The vendor SDK's realtime API (``decart.realtime``) on rxrealtime's sessions.

``from rxrealtime.compat.decart.realtime import RealtimeClient, RealtimeConnectOptions``
replaces ``from decart.realtime import ...``; the rest of the code stays as it is. The
client's ``session`` and ``streams`` are the :class:`rxrealtime.Session` underneath.
Importing this loads the session's modules but no media stack: LiveKit's SDK loads
when a client connects.
"""

from __future__ import annotations

from .client import RealtimeClient, SetInput
from .messages import GenerationTickMessage
from .subscribe import (
    SubscribeClient,
    SubscribeOptions,
    decode_subscribe_token,
    encode_subscribe_token,
)
from .types import ConnectionState, RealtimeConnectOptions, RealtimeSpeed

__all__ = [
    "ConnectionState",
    "GenerationTickMessage",
    "RealtimeClient",
    "RealtimeConnectOptions",
    "RealtimeSpeed",
    "SetInput",
    "SubscribeClient",
    "SubscribeOptions",
    "decode_subscribe_token",
    "encode_subscribe_token",
]
