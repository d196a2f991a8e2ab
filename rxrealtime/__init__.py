"""rxrealtime: realtime video-generation sessions as hot reactivex streams.

>>> import rxrealtime as rt
>>> session = rt.Session("ws://127.0.0.1:8765", api_key="...", model="mirage_v2")
>>> session.generation_ticks.subscribe(print)  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import media, protocol
from .exceptions import (
    AckTimeout,
    AuthError,
    ConfigError,
    ConnectionLost,
    ConnectTimeout,
    InvalidToken,
    NotConnected,
    ProtocolError,
    RealtimeError,
    RequestRejected,
    ServerError,
    SessionClosed,
    SubscriberError,
)
from .fleet import Fleet, FleetTotals, Keyed
from .models import MODELS, ModelDefinition
from .options import IceServer, ReconnectPolicy, SessionOptions
from .server import EmbeddedServer, Faults, ServerSettings, serve_embedded
from .session import AckLatency, ConnectionState, Session, SessionInfo, Subscriber
from .streams import HotStream, StateStream, next_value, values

__all__ = [
    "MODELS",
    "AckLatency",
    "AckTimeout",
    "AuthError",
    "ConfigError",
    "ConnectTimeout",
    "ConnectionLost",
    "ConnectionState",
    "EmbeddedServer",
    "Faults",
    "Fleet",
    "FleetTotals",
    "HotStream",
    "IceServer",
    "InvalidToken",
    "Keyed",
    "ModelDefinition",
    "NotConnected",
    "ProtocolError",
    "RealtimeError",
    "ReconnectPolicy",
    "RequestRejected",
    "ServerError",
    "ServerSettings",
    "Session",
    "SessionClosed",
    "SessionInfo",
    "SessionOptions",
    "StateStream",
    "Subscriber",
    "SubscriberError",
    "__version__",
    "media",
    "next_value",
    "protocol",
    "serve_embedded",
    "values",
]
