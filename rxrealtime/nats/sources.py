"""Sessions as a fleet sees them: the streams read, the key, the model, the worker name.

Shared by the publisher and the stop-command listener, so both name a session alike.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Protocol

from reactivex import Observable

from .. import protocol as p
from ..exceptions import RealtimeError
from ..states import ConnectionState, SessionInfo
from .frames import subject_token

__all__ = ["PublishSource", "SessionKey", "default_worker", "model_of"]


class PublishSource(Protocol):
    """What a publisher reads: a :class:`~rxrealtime.Session` (or anything with its streams)."""

    @property
    def session_started(self) -> Observable[SessionInfo]: ...
    @property
    def generation_ticks(self) -> Observable[p.GenerationTick]: ...
    @property
    def generation_ended(self) -> Observable[p.GenerationEnded]: ...
    @property
    def connection_changes(self) -> Observable[ConnectionState]: ...
    @property
    def errors(self) -> Observable[RealtimeError]: ...


def default_worker() -> str:
    """``<host>-<pid>``: unique per process, readable in subjects and dashboards."""
    return f"{subject_token(socket.gethostname())[:48]}-{os.getpid()}"


def model_of(session: Any) -> str:
    """The model name of a session (``unknown`` for a source without one)."""
    model = getattr(session, "model", None)
    return str(getattr(model, "name", model or "unknown"))


class SessionKey:
    """A session's fleet key (its first server session id, as ``rt.Fleet`` keys it) and
    its current server session id, kept from ``session_started``."""

    def __init__(self, session: PublishSource, key: str | None = None) -> None:
        current = getattr(session, "session_id", None) or ""
        self.key: str = key or current
        self.sid: str = current
        self._subscription = session.session_started.subscribe(self._on_started)

    def _on_started(self, info: SessionInfo) -> None:
        if not self.key:
            self.key = info.sid
        self.sid = info.sid

    def dispose(self) -> None:
        self._subscription.dispose()
