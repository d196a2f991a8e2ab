"""Values that many layers share: the connection state and a server session's identity.

A leaf module (it needs only the wire's structs), so that the core, the streams, tapes,
fleets and dashboards can all name a state without importing each other.
"""

from __future__ import annotations

import enum

from . import protocol as p

__all__ = ["ConnectionState", "SessionInfo", "session_info"]


class ConnectionState(str, enum.Enum):
    """The connection states of the protocol; ``str(state)`` is the wire-style name."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    GENERATING = "generating"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"

    def __str__(self) -> str:
        return self.value


class SessionInfo(p.SubscribeTarget, frozen=True, gc=False):
    """Identity of a server session, published on ``session_started``.

    With media through a LiveKit room there is no server address: ``ip`` is empty,
    ``port`` 0, and ``subscribe_token`` names the room.
    """

    subscribe_token: str = ""


def session_info(frame: p.SessionIdMessage | p.LivekitRoomInfo) -> SessionInfo:
    """The identity a ``session_id`` (direct peer) or ``livekit_room_info`` frame gives."""
    if isinstance(frame, p.SessionIdMessage):
        token = p.make_subscribe_token(frame.session_id, frame.server_ip, frame.server_port)
        return SessionInfo(sid=frame.session_id, ip=frame.server_ip, port=frame.server_port,
                           subscribe_token=token)  # fmt: skip
    return SessionInfo(sid=frame.session_id or frame.room_name, ip="", port=0,
                       subscribe_token=p.make_room_token(frame.room_name))  # fmt: skip
