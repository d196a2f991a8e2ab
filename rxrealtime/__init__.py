"""rxrealtime: realtime video-generation sessions as hot reactivex streams.

Importing the package loads no media stack: aiortc, av and numpy (through
``rxrealtime.media``) and the embedded server (``serve_embedded``, ``EmbeddedServer``,
``Faults``, ``ServerSettings``) load on first use, and so does aiohttp (on connect).

>>> import rxrealtime as rt
>>> session = rt.Session("ws://127.0.0.1:8765", api_key="...", model="mirage_v2")
>>> session.generation_ticks.subscribe(print)  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from . import diagnostics, protocol, quality
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
from .session import AckLatency, ConnectionState, Session, SessionInfo, Subscriber
from .streams import HotStream, LatestStream, StateStream, next_value, values

if TYPE_CHECKING:
    from . import media
    from .connectivity import check_connectivity
    from .server import EmbeddedServer, Faults, ServerSettings, serve_embedded

_LAZY = {
    "check_connectivity": "connectivity",
    "EmbeddedServer": "server",
    "Faults": "server",
    "ServerSettings": "server",
    "serve_embedded": "server",
    "media": None,
}


def __getattr__(name: str) -> Any:
    """Load the heavy parts (the server, the media stack) when first asked for."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module_name = _LAZY[name]
    if module_name is None:
        value: Any = importlib.import_module(f"{__name__}.{name}")
    else:
        value = getattr(importlib.import_module(f"{__name__}.{module_name}"), name)
    globals()[name] = value
    return value


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
    "LatestStream",
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
    "check_connectivity",
    "diagnostics",
    "media",
    "next_value",
    "protocol",
    "quality",
    "serve_embedded",
    "values",
]
