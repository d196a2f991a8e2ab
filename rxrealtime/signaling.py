"""The signaling socket: open, the read loop (the hot path), send, drain-close.

One :class:`SignalingSocket` is the WebSocket of one link. Its read loop decodes each
text frame and hands it to a :class:`FrameRouter`: a table from frame type to the one
function that takes it (a stream's ``emit`` for ticks, the session core for control
frames, the media transport for negotiation). Bad frames become
:class:`~rxrealtime.ProtocolError` values and the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp

from . import protocol as p
from .exceptions import ConnectionLost, ProtocolError, RealtimeError, server_error
from .policy import TickGuard
from .streams import HotStream

__all__ = ["FrameRouter", "Signaling", "SignalingSocket", "checked_ticks"]

logger = logging.getLogger(__name__)


class Signaling(Protocol):
    """What a link needs of its signaling: a WebSocket (:class:`SignalingSocket`), or the
    one HTTP request of a LiveKit view-only subscriber (``watch_stream``)."""

    @property
    def close_code(self) -> int | None: ...

    async def open(self) -> None: ...

    async def send(self, message: p.ClientMessage) -> None: ...

    async def read(self, router: FrameRouter) -> None: ...

    async def close(
        self, drain_s: float = 0.0, reader: asyncio.Task[None] | None = None
    ) -> None: ...


class FrameRouter:
    """Decoded frames to their handlers; ``messages`` sees every frame while observed.

    The read loop inlines :meth:`route` (a Python call per frame is a large part of
    the budget); :meth:`route` is the same logic, for anyone who feeds frames by hand.
    """

    __slots__ = ("errors", "handlers", "messages")

    def __init__(
        self,
        handlers: dict[type, Callable[[Any], None]],
        messages: HotStream[p.ServerMessage],
        errors: HotStream[RealtimeError],
    ) -> None:
        self.handlers = handlers
        self.messages = messages
        self.errors = errors

    def route(self, frame: p.ServerMessage) -> None:
        """Deliver one decoded frame."""
        if self.messages.subscriber_count:
            self.messages.emit(frame)
        handler = self.handlers.get(type(frame))
        if handler is not None:
            handler(frame)


def checked_ticks(
    ticks: HotStream[p.GenerationTick], errors: HotStream[RealtimeError], max_step_s: float
) -> Callable[[p.GenerationTick], None]:
    """The tick handler of one server session: publishes the ticks a :class:`TickGuard`
    believes and reports the others as :class:`ProtocolError` (never billed).

    On the hot path it is one Python call and one comparison per tick: the guard is
    consulted only for the first tick and for steps above ``max_step_s``. The guard's
    state is per server session, so each link makes a new handler.
    """
    guard = TickGuard(max_step_s)
    emit, clock, failed = ticks.emit, time.monotonic, ticks.subscriber_failed
    last = 0  # the guard's mark, mirrored in a closure cell for the fast path

    def on_tick(frame: p.GenerationTick) -> None:
        nonlocal last
        seconds = frame.seconds
        if last and seconds - last <= max_step_s:  # the usual tick: a small step (or none)
            if seconds > last:
                last = guard.last = seconds
            for observer in ticks.observers:  # HotStream.emit, inlined: a call saved
                try:
                    observer.on_next(frame)
                except Exception as exc:
                    failed(exc)
        elif seconds <= last or guard.admits(seconds, clock()):
            last = guard.last
            emit(frame)
        else:
            errors.emit(ProtocolError(guard.explain(seconds), p.encode(frame)))

    return on_tick


class SignalingSocket:
    """The WebSocket of one link. ``describe`` names the server in errors (no secrets)."""

    def __init__(
        self,
        url: str,
        *,
        describe: str,
        max_frame_bytes: int,
        heartbeat_s: float | None,
        redact: Callable[[str], str],
    ) -> None:
        self._url = url
        self._describe = describe
        self._limit = max_frame_bytes
        self._heartbeat = heartbeat_s
        self._redact = redact
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse[bool] | None = None

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code if self._ws is not None else None

    async def open(self) -> None:
        """Connect; raise :class:`AuthError` (HTTP 401) or :class:`ConnectionLost`."""
        self._http = aiohttp.ClientSession()
        try:
            self._ws = await self._http.ws_connect(
                # Frames above max_frame_bytes are reported and skipped by the read loop;
                # only a frame 8x larger makes aiohttp give up on the socket.
                self._url,
                max_msg_size=8 * self._limit,
                autoclose=True,
                heartbeat=self._heartbeat,
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                raise server_error("unauthorized (HTTP 401)") from None
            raise ConnectionLost(
                f"WebSocket handshake with {self._describe} failed: HTTP {exc.status}"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ConnectionLost(
                f"cannot reach {self._describe}: {self._redact(str(exc))}"
            ) from None

    async def send(self, message: p.ClientMessage) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            raise ConnectionLost("signaling socket is closed")
        try:
            await ws.send_str(p.encode(message).decode())
        except (ConnectionError, RuntimeError) as exc:
            raise ConnectionLost(f"cannot send on the signaling socket: {exc}") from None

    async def read(self, router: FrameRouter) -> None:
        """The hot path: receive, decode, route, until the socket closes.

        Everything per frame is bound to a local first and routing is inlined;
        ``ws.receive()`` is called directly because ``async for`` adds a frame per message.
        """
        ws = self._ws
        assert ws is not None
        decode, errors, messages = p.decode_unchecked, router.errors, router.messages
        handler_for = router.handlers.get
        text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
        ended = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)
        limit = self._limit
        receive = ws.receive
        while True:
            msg = await receive()
            if msg.type is text:
                data = msg.data
                if len(data) > limit:
                    errors.emit(ProtocolError(f"frame of {len(data)} chars exceeds {limit}", data))
                    continue
                try:
                    frame = decode(data)
                except Exception:  # rare: p.decode turns it into the ProtocolError
                    try:
                        frame = p.decode(data)
                    except ProtocolError as exc:
                        errors.emit(exc)
                        continue
                if messages.observers:
                    messages.emit(frame)
                handler = handler_for(type(frame))
                if handler is not None:
                    handler(frame)
            elif msg.type is binary:
                errors.emit(ProtocolError("binary frame; frames must be JSON text", msg.data))
            elif msg.type in ended:
                return
            elif msg.type is aiohttp.WSMsgType.ERROR:
                errors.emit(self._socket_error(msg.data or ws.exception()))

    def _socket_error(self, exc: BaseException | None) -> ProtocolError:
        """Say what broke the socket; aiohttp's own text is often just a number."""
        code = getattr(exc, "code", None)
        if code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
            hard = 8 * self._limit
            return ProtocolError(
                f"the server sent a frame above the hard limit of {hard} bytes "
                f"(8x max_frame_bytes={self._limit}): {exc}; the socket is closed "
                "(code 1009, message too big)"
            )
        return ProtocolError(f"signaling socket error: {exc!r} (close code {code})")

    async def close(self, drain_s: float = 0.0, reader: asyncio.Task[None] | None = None) -> None:
        """Close the socket; with ``drain_s``, let ``reader`` see what is still in flight.

        Draining matters for billing: a tick the server sent before it saw our close
        frame is billed, so the read loop must still see it. aiohttp's ``close()``
        discards frames that arrive while closing, and it has no public "send the close
        frame only", so this one place uses its writer (``_writer``) to send the close
        frame and lets the read loop run on until the server's close arrives.
        """
        ws = self._ws
        if drain_s and ws is not None and not ws.closed and reader is not None:
            writer = getattr(ws, "_writer", None)
            with contextlib.suppress(Exception):
                if writer is not None:
                    await writer.close(aiohttp.WSCloseCode.OK, b"")
                    await asyncio.wait_for(asyncio.shield(reader), drain_s)
        if reader is not None and not reader.done():
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        # Bounded: a wedged socket must not make disconnect() hang.
        for closing in (ws, self._http):
            if closing is None:
                continue
            try:
                await asyncio.wait_for(closing.close(), 5.0)
            except (asyncio.TimeoutError, Exception) as exc:
                logger.warning("closing %s failed: %r", type(closing).__name__, exc)
