"""The vendor's Python SDK (``decart`` 0.2.4), realtime part, on rxrealtime's sessions.

Change the import lines and nothing else::

    from decart import models                       # before
    from decart.realtime import RealtimeClient, RealtimeConnectOptions

    from rxrealtime.compat.decart import models     # after
    from rxrealtime.compat.decart.realtime import RealtimeClient, RealtimeConnectOptions

The submodules mirror the vendor's import paths: ``.realtime`` (and its ``client``,
``subscribe``, ``types``, ``messages``), ``.models``, ``.errors``, ``.types``,
``.client``. Each connected client runs on a :class:`rxrealtime.Session` with
``transport="livekit"`` and exposes it (``client.session``, ``client.streams``), so the
migrated code can adopt streams and operators one call at a time.

What differs from the vendor's SDK, on purpose: every error is also a
:class:`rxrealtime.RealtimeError` (and redacts secrets); a reconnect restores the last
acknowledged prompt and image; ``http(s)`` image URLs are refused, not fetched; only the
realtime API is offered (``DecartClient.process``/``queue``/``tokens`` raise
``NotImplementedError``). ``docs/migration.md`` has the details.

Importing this package loads the errors, the models and the types (pydantic); the
realtime names load the session on first use, and LiveKit's SDK loads only when a
client connects.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from .client import DecartClient
from .errors import (
    DecartSDKError,
    InvalidAPIKeyError,
    InvalidBaseURLError,
    InvalidInputError,
    ModelNotFoundError,
    ProcessingError,
    QueueResultError,
    QueueStatusError,
    QueueSubmitError,
    TokenCreateError,
    TokenDecodeError,
    TokenVerifyError,
    WebRTCError,
)
from .models import CustomModelDefinition, ModelDefinition, RealtimeSpeed, models
from .types import FileInput, ModelState, Prompt

if TYPE_CHECKING:
    from .realtime import (
        ConnectionState,
        RealtimeClient,
        RealtimeConnectOptions,
        SetInput,
        SubscribeClient,
        SubscribeOptions,
        decode_subscribe_token,
        encode_subscribe_token,
    )

VENDOR_VERSION = "0.2.4"
"""The version of the vendor's SDK whose API this facade keeps."""

REALTIME_AVAILABLE = importlib.util.find_spec("livekit") is not None
"""Whether LiveKit's SDK is installed (found, not imported), as the vendor's flag says
whether its realtime extra is; without it a client cannot connect."""

_REALTIME = ("ConnectionState", "RealtimeClient", "RealtimeConnectOptions", "SetInput",
             "SubscribeClient", "SubscribeOptions", "decode_subscribe_token",
             "encode_subscribe_token")  # fmt: skip


def __getattr__(name: str) -> Any:
    """The realtime names load the session's modules on first use."""
    if name not in _REALTIME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.realtime"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "REALTIME_AVAILABLE",
    "VENDOR_VERSION",
    "ConnectionState",
    "CustomModelDefinition",
    "DecartClient",
    "DecartSDKError",
    "FileInput",
    "InvalidAPIKeyError",
    "InvalidBaseURLError",
    "InvalidInputError",
    "ModelDefinition",
    "ModelNotFoundError",
    "ModelState",
    "ProcessingError",
    "Prompt",
    "QueueResultError",
    "QueueStatusError",
    "QueueSubmitError",
    "RealtimeClient",
    "RealtimeConnectOptions",
    "RealtimeSpeed",
    "SetInput",
    "SubscribeClient",
    "SubscribeOptions",
    "TokenCreateError",
    "TokenDecodeError",
    "TokenVerifyError",
    "WebRTCError",
    "decode_subscribe_token",
    "encode_subscribe_token",
    "models",
]
