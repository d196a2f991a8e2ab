"""The embedded reference server's aiohttp app: authentication, accepting or refusing
connections, and handing each accepted socket to a session or a viewer. In LiveKit mode
it also runs the LiveKit side (:mod:`.livekit_rooms`) and answers
``POST /watch-stream/{room}`` with view-only credentials for a session's room.

Everything a test steers from outside (settings, faults, counters, raw frames, drops,
send observers) is reached through :class:`EmbeddedServer`, never through a session.
Each client is handed the server as a :class:`~.context.ServerContext` (which
:class:`EmbeddedServer` satisfies, checked by mypy where it passes itself), so the
clients never import this module and the app alone knows them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiortc.contrib.media import MediaRelay
from pydantic import ValidationError

from .. import protocol as p
from ..exceptions import ConfigError
from ..models import served_tier
from ..options import describe_validation_error
from .livekit_rooms import LivekitRooms
from .peer import ServerPeer
from .sessions import SendObserver, ServerSession, ViewerSession
from .settings import STREAM_PATHS, Faults, ServerSettings
from .tape import TapePlayback

__all__ = ["EmbeddedServer", "serve_embedded"]

logger = logging.getLogger(__name__)


class EmbeddedServer:
    """A running reference server; use :func:`serve_embedded` to get one."""

    def __init__(self, settings: ServerSettings | None = None, **overrides: Any) -> None:
        try:
            base = settings.model_dump() if settings is not None else {}
            if settings is not None:
                base["api_key"] = settings.api_key
            self.settings = ServerSettings(**{**base, **overrides})
        except ValidationError as exc:
            raise ConfigError(
                f"invalid server settings: {describe_validation_error(exc)}"
            ) from None
        self.sessions: dict[str, ServerSession] = {}
        self.billed_by_session: dict[str, int] = {}
        """Final billed seconds of every server session that has ended."""
        self.tier_by_session: dict[str, str] = {}
        """The speed tier of every server session since it was accepted (``standard`` or
        ``fast``): what its billed seconds are priced at. Taken from the query's ``speed``
        as the service takes it: a tier the model does not offer is ignored, so that
        session is ``standard`` (:func:`rxrealtime.models.served_tier`)."""
        self.counters: dict[str, int] = {}
        self.relay = MediaRelay()
        self.on_send: list[SendObserver] = []
        """Called with (session, frame) for each frame a streaming session sends its
        client (not raw frames, not viewers): the bench stamps tick send times here."""
        self.livekit: LivekitRooms | None = None
        """The LiveKit server and its rooms, in LiveKit mode once started."""
        self.rooms: dict[str, ServerSession] = {}
        """Sessions by LiveKit room name (LiveKit mode)."""
        self.tape = TapePlayback.load(self.settings.tape) if self.settings.tape else None
        """The tape played to clients (``tape=``), if any."""
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._peers: set[ServerPeer] = set()

    def __repr__(self) -> str:
        return f"<EmbeddedServer {self.url if self._runner else 'stopped'}>"

    @property
    def api_key(self) -> str:
        """The key clients must pass (``settings.api_key``, random unless one was given)."""
        return self.settings.api_key.get_secret_value()

    @property
    def port(self) -> int:
        """The port the server listens on, known once started (0 before)."""
        return self._port

    @property
    def url(self) -> str:
        """The service base URL for ``Session(url, ...)``."""
        host = self.settings.host
        host = f"[{host}]" if ":" in host else host
        return f"ws://{host}:{self._port}"

    @property
    def faults(self) -> Faults:
        """The fault switches in force (``settings.faults``); one set at run time, e.g.
        ``server.faults.fail_acks = True``, applies from then on."""
        return self.settings.faults

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name`` of ``counters`` (which starts it at 0)."""
        self.counters[name] = self.counters.get(name, 0) + n

    def drop_session(self, session_id: str) -> None:
        """Simulate a network drop of one session at its next tick."""
        self.sessions[session_id].drop()

    def take_drop(self) -> bool:
        """Whether one more session may be hit by a drop fault (``max_drops``)."""
        limit = self.faults.max_drops
        if limit and self.counters.get("drops_planned", 0) >= limit:
            return False
        self.count("drops_planned")
        return True

    async def start(self) -> EmbeddedServer:
        """Listen (and in LiveKit mode start LiveKit first); returns ``self``. If either
        fails (``OSError`` for a port in use), what was started is stopped and it raises."""
        if self.settings.media == "livekit":
            self.livekit = LivekitRooms(self.settings)
            try:
                await self.livekit.start()
            except BaseException:
                await self.livekit.stop()
                self.livekit = None
                raise
        app = web.Application()
        for path in STREAM_PATHS:
            app.router.add_get(path, self._handle_stream)
        app.router.add_get("/subscribe/{session_id}", self._handle_subscribe)
        app.router.add_post("/watch-stream/{room_name}", self._handle_watch)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        try:
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
            await site.start()
        except BaseException:
            await self.stop()
            raise
        self._port = self._runner.addresses[0][1]
        logger.info("embedded server listening on %s", self.url)
        return self

    async def stop(self) -> None:
        """Close every client connection (waiting up to 5 s for each), stop listening,
        and stop LiveKit in LiveKit mode."""
        for peer in list(self._peers):
            try:
                await asyncio.wait_for(peer.close(), 5.0)
            except asyncio.TimeoutError:
                logger.warning("closing a peer of the embedded server timed out")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.livekit is not None:
            await self.livekit.stop()
            self.livekit = None

    async def __aenter__(self) -> EmbeddedServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def send_raw(self, frame: str | bytes, session_id: str | None = None) -> int:
        """Send a raw frame (text or binary) to one session or all; returns how many got it."""
        targets = [self.sessions[session_id]] if session_id else list(self.sessions.values())
        for session in targets:
            await session.send_raw(frame)
        return len(targets)

    def _authorized(self, request: web.Request) -> bool:
        return self._key_ok(request.query.get("api_key", ""))

    def _key_ok(self, given: str) -> bool:
        """A constant-time comparison with the API key (``reject_auth``: never)."""
        if self.settings.faults.reject_auth:
            return False
        return hmac.compare_digest(given.encode("utf-8"), self.api_key.encode("utf-8"))

    async def _accept(self, request: web.Request) -> tuple[web.WebSocketResponse, bool]:
        """Upgrade the request; a wrong key gets ``error: invalid api key`` and a close."""
        ws = web.WebSocketResponse(max_msg_size=8 * self.settings.max_frame_bytes)
        await ws.prepare(request)
        self.count("connections")
        if not self._authorized(request):
            self.count("auth_failures")
            await self._refuse(ws, "invalid api key", 4001)
            return ws, False
        if self.counters["connections"] <= self.faults.refuse_first:
            self.count("capacity_refusals")
            await self._refuse(ws, "capacity: no generation slot free, retry later", 4503)
            return ws, False
        return ws, True

    async def _refuse(self, ws: web.WebSocketResponse, error: str, code: int) -> None:
        await ws.send_str(p.encode(p.ErrorMessage(error=error)).decode())
        await ws.close(code=code, message=error.encode())

    async def _handle_stream(self, request: web.Request) -> web.StreamResponse:
        ws, ok = await self._accept(request)
        if not ok:
            return ws
        model = request.query.get("model", "")
        make = self.tape.session if self.tape is not None else ServerSession
        session = make(self, ws, model, transport=request.transport)
        self.tier_by_session[session.id] = served_tier(model, request.query.get("speed"))
        self.sessions[session.id] = session
        self._peers.add(session)
        self.count("sessions")
        try:
            await session.serve()
        finally:
            self._peers.discard(session)
            self.sessions.pop(session.id, None)
        return ws

    async def _handle_subscribe(self, request: web.Request) -> web.StreamResponse:
        ws, ok = await self._accept(request)
        if not ok:
            return ws
        target = self.sessions.get(request.match_info["session_id"])
        if target is None:
            await ws.send_str(p.encode(p.ErrorMessage(error="invalid session")).decode())
            await ws.close()
            return ws
        viewer = ViewerSession(self, ws, target)
        target.viewers.add(viewer)
        self._peers.add(viewer)
        try:
            await viewer.serve()
        finally:
            self._peers.discard(viewer)
        return ws

    async def _handle_watch(self, request: web.Request) -> web.Response:
        """``POST /watch-stream/{room}`` (header ``x-api-key``): view-only LiveKit credentials."""
        self.count("watch_requests")
        if not self._key_ok(request.headers.get("x-api-key", "")):
            self.count("auth_failures")
            return web.json_response({"error": "invalid api key"}, status=401)
        session = self.rooms.get(request.match_info["room_name"])
        if self.livekit is None or session is None or session.room is None:
            return web.json_response({"error": "unknown room"}, status=404)
        return web.json_response(self.livekit.viewer_credentials(session.room))


@contextlib.asynccontextmanager
async def serve_embedded(
    settings: ServerSettings | None = None, **overrides: Any
) -> AsyncIterator[EmbeddedServer]:
    """Run the reference server on a free loopback port for the duration of the block."""
    server = EmbeddedServer(settings, **overrides)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
