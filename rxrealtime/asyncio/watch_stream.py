"""The signaling of a LiveKit view-only subscriber: one HTTP request, no socket.

In LiveKit mode a viewer asks ``POST {http base}/watch-stream/{room_name}`` (header
``x-api-key``) for credentials and joins the room without publishing. To the rest of the
session this looks like a signaling channel that delivers one ``livekit_room_info`` and
then stays quiet until closed, so the LiveKit transport, the core and the streams work
unchanged.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp

from .. import protocol as p
from ..exceptions import ConnectionLost, ProtocolError, server_error
from .signaling import FrameRouter

__all__ = ["WatchStreamSignaling", "watch_stream_url"]


def watch_stream_url(base: str, room_name: str) -> str:
    """``{http(s) base}/watch-stream/{room}``: ws and wss bases become http and https."""
    parts = urlsplit(base.strip())
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    path = parts.path.rstrip("/") + "/watch-stream/" + quote(room_name, safe="")
    return urlunsplit((scheme, parts.netloc, path, "", ""))


class WatchStreamSignaling:
    """Asks for the room's credentials on :meth:`open`; :meth:`read` hands them on."""

    def __init__(
        self, base: str, room_name: str, api_key: str, *, redact: Callable[[str], str]
    ) -> None:
        self._url = watch_stream_url(base, room_name)
        self._room = room_name
        self._key = api_key
        self._redact = redact
        self._info: p.LivekitRoomInfo | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def close_code(self) -> int | None:
        return None

    async def open(self) -> None:
        """POST for credentials: 401/403 is an :class:`AuthError`, 404 (no such room) one
        too (``invalid session``: never retried), other failures :class:`ConnectionLost`."""
        self._http = aiohttp.ClientSession()
        try:
            async with self._http.post(self._url, headers={"x-api-key": self._key}) as reply:
                body = await reply.text()
                status = reply.status
        except (aiohttp.ClientError, OSError) as exc:
            raise ConnectionLost(f"cannot reach {self._url}: {self._redact(str(exc))}") from None
        excerpt = self._redact(body[:200])
        if status in (401, 403):
            raise server_error(f"watch-stream unauthorized (HTTP {status}): {excerpt}")
        if status == 404:
            raise server_error(f"invalid session: no room {self._room!r} (HTTP 404)")
        if status >= 400:
            raise ConnectionLost(f"watch-stream failed (HTTP {status}): {excerpt}")
        try:
            data = json.loads(body)
            self._info = p.LivekitRoomInfo(
                livekit_url=str(data["livekit_url"]),
                token=str(data["token"]),
                room_name=str(data.get("room_name") or self._room),
                session_id=str(data.get("session_id") or self._room),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ProtocolError(f"watch-stream answer lacks livekit_url/token: {exc!r}") from None

    async def send(self, message: p.ClientMessage) -> None:
        raise ConnectionLost("a view-only LiveKit subscriber has no signaling socket")

    async def read(self, router: FrameRouter) -> None:
        """Deliver the room's credentials, then wait: only the room can end this link."""
        assert self._info is not None
        router.route(self._info)
        await asyncio.Event().wait()

    async def close(self, drain_s: float = 0.0, reader: asyncio.Task[None] | None = None) -> None:
        if reader is not None and not reader.done():
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
