"""rxrealtime: realtime video-generation sessions as hot reactivex streams.

Importing the package loads only its errors: every other public name loads its module
on first use, so ``import rxrealtime.protocol`` costs msgspec alone, ``rt.Session``
brings reactivex and pydantic, and aiohttp, aiortc, av, numpy and the embedded server
load only when a session connects or the server starts.

>>> import rxrealtime as rt
>>> session = rt.Session("ws://127.0.0.1:8765", api_key="...", model="lucy-2.6")
>>> session.generation_ticks.subscribe(print)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
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

if TYPE_CHECKING:
    from . import diagnostics, media, models, protocol, quality
    from .connectivity import check_connectivity
    from .fleet import Fleet, FleetTotals, Keyed
    from .models import MODELS, ModelDefinition
    from .options import IceServer, ReconnectPolicy, SessionOptions
    from .server import EmbeddedServer, Faults, ServerSettings, serve_embedded
    from .session import AckLatency, ConnectionState, Session, SessionInfo, Subscriber
    from .streams import HotStream, LatestStream, StateStream, next_value, values

#: Public name -> the module it lives in (``None``: the name is a submodule). Nothing
#: but the errors loads at ``import rxrealtime``: a decoder-only user who imports
#: ``rxrealtime.protocol`` pays for msgspec and nothing else.
_LAZY: dict[str, str | None] = {
    **dict.fromkeys(("check_connectivity",), "connectivity"),
    **dict.fromkeys(("Fleet", "FleetTotals", "Keyed"), "fleet"),
    **dict.fromkeys(("MODELS", "ModelDefinition"), "models"),
    **dict.fromkeys(("IceServer", "ReconnectPolicy", "SessionOptions"), "options"),
    **dict.fromkeys(("EmbeddedServer", "Faults", "ServerSettings", "serve_embedded"), "server"),
    **dict.fromkeys(
        ("AckLatency", "ConnectionState", "Session", "SessionInfo", "Subscriber"), "session"
    ),
    **dict.fromkeys(
        ("HotStream", "LatestStream", "StateStream", "next_value", "values"), "streams"
    ),
    **dict.fromkeys(
        ("dashboards", "diagnostics", "media", "models", "nats", "protocol", "quality", "tapes"),
        None,
    ),
}


def __getattr__(name: str) -> Any:
    """Load each public name's module when the name is first used."""
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


def __dir__() -> list[str]:
    """What ``dir(rxrealtime)`` and completion show: the lazy names too, before first use."""
    return sorted({*globals(), *__all__})


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
    "models",
    "next_value",
    "protocol",
    "quality",
    "serve_embedded",
    "values",
]
