"""How a session's media travels: the seam, its registry, and one module per transport.

:mod:`~rxrealtime.transports.base` is the seam (:class:`MediaTransport`,
:class:`MediaContext`) and the registry (:data:`TRANSPORTS`); the transports themselves
(:mod:`~rxrealtime.transports.aiortc`, a direct peer; :mod:`~rxrealtime.transports.livekit`,
a LiveKit room) and the ICE helpers (:mod:`~rxrealtime.transports.ice`) load on first use.
A transport never imports the core, the shell or the session: it acts on its session only
through the :class:`MediaContext` it is given.
"""

from __future__ import annotations

from .base import (
    TRANSPORTS,
    MediaContext,
    MediaTransport,
    SignalingOnly,
    TransportSpec,
    load_transport,
)

__all__ = ["TRANSPORTS", "MediaContext", "MediaTransport", "SignalingOnly", "TransportSpec",
           "load_transport"]  # fmt: skip
