"""A live web dashboard for a session or a fleet: one page, fed over Server-Sent Events.

``await serve(session_or_fleet)`` (or ``rxrealtime dashboard``, ``watch --web``,
``demo --web``) serves, on 127.0.0.1 unless told otherwise:

* ``/`` the page (with uPlot, vendored under ``static/``: nothing loads from elsewhere);
* ``/events`` Server-Sent Events, one JSON snapshot per ``data:`` line, sent when
  something changed (at most every ``refresh_s``), the first one with the chart history;
* ``/api/state`` the same snapshot (with history) as JSON, ``/api/log.csv`` the billing
  log (one line per tick);
* ``/video/<session>`` the generated video as MJPEG, encoded only while someone watches.

Nothing else is served. Each SSE client has a small queue of snapshots; when it is full
the oldest is dropped (each snapshot is complete), so a slow browser costs the session
nothing: a tick only marks the state as changed, and one snapshot is encoded per
publication whatever the number of clients. The page never sees an API key: sessions
appear by their key, model and redacted ``session.url``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from ..billing import Rate
from ..exceptions import ConfigError
from ..fleet import Fleet
from ..session import Session
from ._mjpeg import VideoFeed, offer
from ._webstate import LiveState

__all__ = ["WebDashboard", "listen", "parse_address", "serve"]

logger = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
#: Every file the page may load: name -> content type. Nothing else under static/ is served.
STATIC_FILES = {
    "app.js": "text/javascript",
    "style.css": "text/css",
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
    "uPlot.LICENSE": "text/plain",
}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
BOUNDARY = "rxrealtime-frame"


class WebDashboard:
    """The page, its event stream and the video feeds of a session or a fleet.

    A :class:`~rxrealtime.Session` is watched through a fleet of its own (priced with
    ``rate_per_second`` or ``prices``); a :class:`~rxrealtime.Fleet` is shown as it is
    (its prices). ``budget_s`` / ``budget_cost`` are per session and make each row show
    the share used, the time left and a bar (amber at 80 %, red at 100 %); ``window_s``
    is the burn-rate window. ``await start()`` serves, ``await stop()`` ends everything.
    """

    def __init__(
        self,
        source: Session | Fleet,
        *,
        rate_per_second: Rate | None = None,
        prices: Mapping[str, Rate] | None = None,
        budget_s: int | None = None,
        budget_cost: Rate | None = None,
        window_s: float = 60.0,
        title: str | None = None,
        refresh_s: float = 0.1,
        queue_size: int = 4,
        max_fps: float = 10.0,
    ) -> None:
        if isinstance(source, Fleet):
            if rate_per_second is not None or prices is not None:
                raise ConfigError("a fleet brings its own prices: pass them to Fleet()")
            self.fleet, self._own_fleet = source, False
        else:
            self.fleet, self._own_fleet = Fleet([source], rate_per_second=rate_per_second,
                                                prices=prices), True  # fmt: skip
        if queue_size < 1:
            raise ConfigError("queue_size must be >= 1")
        default_title = (
            f"rxrealtime · {source.model.name}"
            if isinstance(source, Session)
            else "rxrealtime fleet"
        )
        self.refresh_s = refresh_s
        self.queue_size = queue_size
        self.max_fps = max_fps
        self.published = 0
        self._clients: set[asyncio.Queue[bytes | None]] = set()
        self._feeds: dict[int, VideoFeed] = {}
        self._pending: asyncio.Handle | None = None
        self._last_publish = 0.0
        self._runner: web.AppRunner | None = None
        self._host, self._port = "127.0.0.1", 0
        self.state = LiveState(
            self.fleet,
            budget_s=budget_s,
            budget_cost=budget_cost,
            window_s=window_s,
            title=title or default_title,
            on_change=self._changed,
        )

    # -- serving ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://host:port/`` of the page, once started."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}/"

    @property
    def port(self) -> int:
        """The port the page is served on (the one picked, after ``start(0)``)."""
        return self._port

    @property
    def host(self) -> str:
        """The address the page is served on."""
        return self._host

    @property
    def clients(self) -> int:
        """Open ``/events`` streams."""
        return len(self._clients)

    @property
    def backlog(self) -> int:
        """The most snapshots any ``/events`` client has waiting (at most ``queue_size``)."""
        return max((queue.qsize() for queue in self._clients), default=0)

    @property
    def viewers(self) -> int:
        """Open ``/video`` streams."""
        return sum(len(feed.viewers) for feed in self._feeds.values())

    def app(self) -> web.Application:
        """The aiohttp application (its routes are all there is)."""
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/events", self._events)
        app.router.add_get("/api/state", self._api_state)
        app.router.add_get("/api/log.csv", self._api_log)
        app.router.add_get("/video/{key}", self._video)
        return app

    async def start(
        self, port: int = 0, host: str = "127.0.0.1", *, sock: socket.socket | None = None
    ) -> WebDashboard:
        """Serve on ``host:port`` (loopback by default; ``port=0`` picks a free port), or
        on ``sock``, a listening socket opened earlier (see :func:`listen`)."""
        # handler_cancellation: a browser that goes away cancels its stream at once
        self._runner = web.AppRunner(
            self.app(), handle_signals=False, access_log=None, handler_cancellation=True
        )
        await self._runner.setup()
        if sock is not None:
            await web.SockSite(self._runner, sock).start()
            host = sock.getsockname()[0]
        else:
            await web.TCPSite(self._runner, host, port).start()
        self._host, self._port = host, self._runner.addresses[0][1]
        logger.info("dashboard on %s", self.url)
        return self

    async def stop(self) -> None:
        """End every stream, stop serving and stop listening to the sessions."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        for queue in list(self._clients):
            offer(queue, None)
        for feed in list(self._feeds.values()):
            await feed.close()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        self.state.dispose()
        if self._own_fleet:
            self.fleet.close()

    async def __aenter__(self) -> WebDashboard:
        return self if self._runner is not None else await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- publishing ------------------------------------------------------------------

    def _changed(self) -> None:
        """Something changed: publish soon, at most once per ``refresh_s``."""
        if self._pending is not None or not self._clients:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last_publish + self.refresh_s - loop.time())
        self._pending = loop.call_later(delay, self._publish)

    def _publish(self) -> None:
        self._pending = None
        self._last_publish = asyncio.get_running_loop().time()
        if not self._clients:
            return
        data = _sse(self.state.snapshot())
        self.published += 1
        for queue in self._clients:
            offer(queue, data)

    # -- handlers --------------------------------------------------------------------

    async def _index(self, _: web.Request) -> web.Response:
        return web.Response(
            body=(STATIC / "index.html").read_bytes(),
            content_type="text/html",
            charset="utf-8",
            headers=HEADERS,
        )

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound()
        return web.Response(
            body=(STATIC / name).read_bytes(),
            content_type=STATIC_FILES[name],
            headers={**HEADERS, "Cache-Control": "max-age=3600"},
        )

    async def _api_state(self, _: web.Request) -> web.Response:
        return web.json_response(self.state.snapshot(with_history=True), headers=HEADERS)

    async def _api_log(self, _: web.Request) -> web.Response:
        return web.Response(
            text=self.state.log_csv(),
            content_type="text/csv",
            headers={**HEADERS, "Content-Disposition": 'inline; filename="billing.csv"'},
        )

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={**HEADERS, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=self.queue_size)
        self._clients.add(queue)
        try:
            await response.write(b"retry: 2000\n" + _sse(self.state.snapshot(with_history=True)))
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), 15.0)
                except asyncio.TimeoutError:
                    await response.write(b": keep-alive\n\n")  # fails once the client left
                    continue
                if data is None:
                    break
                await response.write(data)
        except ConnectionError:
            pass  # the browser went away: nothing to clean up but our queue
        finally:
            self._clients.discard(queue)
        return response

    async def _video(self, request: web.Request) -> web.StreamResponse:
        row = self.state.row_for(request.match_info["key"])
        if row is None:
            raise web.HTTPNotFound()
        feed = self._feeds.get(id(row.session))
        if feed is None:
            feed = self._feeds[id(row.session)] = VideoFeed(row.session.frames, self.max_fps)
        response = web.StreamResponse(
            headers={
                **HEADERS,
                "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            }
        )
        await response.prepare(request)
        queue = feed.join()
        try:
            while (jpeg := await queue.get()) is not None:
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                head += f"Content-Length: {len(jpeg)}\r\n\r\n"
                await response.write(head.encode() + jpeg + b"\r\n")
        except ConnectionError:
            pass
        finally:
            await asyncio.shield(feed.leave(queue))
        return response


def _sse(snapshot: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(snapshot, separators=(",", ":")).encode() + b"\n\n"


def parse_address(text: str, default_port: int = 8080) -> tuple[str, int]:
    """``HOST:PORT``, ``HOST``, ``:PORT`` or ``PORT`` (``[::1]:PORT`` for IPv6) as
    ``(host, port)``; the host defaults to 127.0.0.1. Raises ``ConfigError``."""
    host, sep, port = text.rpartition(":") if not text.isdigit() else ("", ":", text)
    if not sep or (host.count(":") and not host.startswith("[")):  # no port, or bare IPv6
        host, port = text, str(default_port)
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"expected HOST:PORT (port 0-65535, 0 picks one), got {text!r}")
    return host, int(port)


def listen(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on ``host:port``, opened now, for ``serve(..., sock=)``.

    A socket keeps the network namespace it was made in: a page whose socket is opened
    before the thread moves into another namespace (``rxrealtime demo --impair`` puts it
    in the client end of an impaired link) stays reachable from this machine."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


async def serve(
    source: Session | Fleet,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    sock: socket.socket | None = None,
    **options: Any,
) -> WebDashboard:
    """Serve the dashboard of ``source`` (a session or a fleet) and return it, started
    (on ``sock`` when given, see :func:`listen`); ``options`` are :class:`WebDashboard`'s.
    Use ``async with await serve(...)`` or ``await dashboard.stop()``; ``dashboard.url``
    is the page."""
    return await WebDashboard(source, **options).start(port, host, sock=sock)
