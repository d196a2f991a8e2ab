"""What a session is for: streaming its own video, or watching another session.

A role decides the endpoint a session connects to and which calls make sense for it;
the session itself is the same object either way, so a view-only watcher gets every
stream, reconnect rule and error path of a streaming session for free.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from . import protocol as p
from .exceptions import ConfigError
from .models import ModelDefinition

__all__ = ["Role", "Streaming", "Viewing", "ViewingRoom"]


class Role:
    """Base of the roles; see the module docstring."""

    view_only = False

    def endpoint(
        self, resolution: str | None, speed: str | None = None
    ) -> tuple[str, dict[str, str]]:
        """The URL path and query (without the key and user agent) to connect to."""
        raise NotImplementedError

    def check_connect(self, local_track: Any, prompt: str | None, image: Any) -> None:
        """Raise :class:`ConfigError` if ``connect()`` got something this role cannot use."""

    def check_request(self, kind: str) -> None:
        """Raise :class:`ConfigError` if this role may not send a ``kind`` request."""


class Streaming(Role):
    """A session that sends video (or nothing) and receives the generated video."""

    def __init__(self, model: ModelDefinition) -> None:
        self.model = model

    def endpoint(
        self, resolution: str | None, speed: str | None = None
    ) -> tuple[str, dict[str, str]]:
        query = {"model": self.model.name}
        if resolution:
            query["resolution"] = resolution
        if speed:
            query["speed"] = speed
        return self.model.url_path, query


class Viewing(Role):
    """A view-only subscriber of the server session named by a subscribe token."""

    view_only = True

    def __init__(self, target: p.SubscribeTarget) -> None:
        self.target = target

    def endpoint(
        self, resolution: str | None, speed: str | None = None
    ) -> tuple[str, dict[str, str]]:
        path = "/subscribe/" + quote(self.target.sid, safe="")
        return path, {"IP": self.target.ip, "port": str(self.target.port)}

    def check_connect(self, local_track: Any, prompt: str | None, image: Any) -> None:
        if local_track is not None or prompt is not None or image is not None:
            raise ConfigError("a view-only subscriber cannot send video, prompts or images")

    def check_request(self, kind: str) -> None:
        raise ConfigError(f"a view-only subscriber cannot change the {kind}")


class ViewingRoom(Viewing):
    """A view-only subscriber of a LiveKit-mode session, named by its room.

    It has no signaling socket: ``POST /watch-stream/{room}`` gives it the room's
    credentials, and it receives the generated video only (no ticks or acks: those are
    the streaming client's).
    """

    def __init__(self, target: p.RoomTarget) -> None:
        self.room = target

    def endpoint(
        self, resolution: str | None, speed: str | None = None
    ) -> tuple[str, dict[str, str]]:
        return "/watch-stream/" + quote(self.room.room_name, safe=""), {}
