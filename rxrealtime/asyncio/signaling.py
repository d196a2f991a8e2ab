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
import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp

from .. import protocol as p
from ..core.policy import TickGuard
from ..exceptions import ConnectionLost, ProtocolError, RealtimeError, server_error
from ..streams import HotStream

__all__ = ["CheckedTicks", "FrameRouter", "Signaling", "SignalingSocket", "read_frames"]

logger = logging.getLogger(__name__)


# Text frames as bytes where aiohttp offers it (3.13+): msgspec decodes bytes directly and
# validates UTF-8 itself, so aiohttp's str conversion of every frame is work thrown
# away; a frame that is not UTF-8 then becomes a ProtocolError instead of closing the
# socket. ``max_frame_bytes`` then counts bytes, as its name says (chars on older aiohttp).
_RAW_TEXT: dict[str, Any] = (
    {"decode_text": False}
    if "decode_text" in inspect.signature(aiohttp.ClientSession.ws_connect).parameters
    else {}
)


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


class CheckedTicks:
    """The tick handler of one server session: publishes the ticks a :class:`TickGuard`
    believes on ``stream`` and reports the others as :class:`ProtocolError` on
    ``errors`` (never billed).

    The usual tick, a small step (or none) after the first, needs only a comparison:
    the guard's clock rule is consulted for the first tick and for steps above
    ``max_step_s``. The guard's state is per server session, so each link makes a new
    one. The signaling read loop inlines the usual case (``last and seconds - last <=
    step``, then ``stream.deliver``); calling the object handles every case.
    """

    __slots__ = ("errors", "guard", "step", "stream")

    def __init__(
        self,
        stream: HotStream[p.GenerationTick],
        errors: HotStream[RealtimeError],
        max_step_s: float,
    ) -> None:
        self.stream = stream
        self.errors = errors
        self.guard = TickGuard(max_step_s)
        # Seconds are integers, so the step's whole part decides alike; comparing an int
        # with an int is several times cheaper than with a float on the hot path.
        self.step: float = math.floor(max_step_s) if math.isfinite(max_step_s) else max_step_s

    def __call__(self, frame: p.GenerationTick) -> None:
        guard, seconds = self.guard, frame.seconds
        last = guard.last
        if last and seconds - last <= self.step:
            if seconds > last:
                guard.last = seconds
        elif not guard.admits(seconds, time.monotonic()):
            self.errors.emit(ProtocolError(guard.explain(seconds), p.encode(frame)))
            return
        deliver = self.stream.deliver
        if deliver is not None:
            try:
                deliver(frame)
            except Exception as exc:
                self.stream.subscriber_failed(exc)


class FrameRouter:
    """Decoded frames to their handlers; ``messages`` sees every frame while observed.

    When the handler of ``generation_tick`` is a :class:`CheckedTicks`, it is the
    router's :attr:`ticks` lane: the read loop runs its usual case inline, with no call
    between the socket and the subscriber. :meth:`route` is the same logic as one call,
    for anyone who feeds frames by hand.
    """

    __slots__ = ("errors", "handlers", "messages", "ticks")

    def __init__(
        self,
        handlers: dict[type, Callable[[Any], None]],
        messages: HotStream[p.ServerMessage],
        errors: HotStream[RealtimeError],
    ) -> None:
        self.handlers = handlers
        self.messages = messages
        self.errors = errors
        lane = handlers.get(p.GenerationTick)
        self.ticks = lane if isinstance(lane, CheckedTicks) else None

    def route(self, frame: p.ServerMessage) -> None:
        """Deliver one decoded frame."""
        if self.messages.observers:
            self.messages.emit(frame)
        handler = self.handlers.get(type(frame))
        if handler is not None:
            handler(frame)


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
                **_RAW_TEXT,
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
        """The hot path (:func:`read_frames`) on this socket, until it closes.

        ``ws.receive()`` is handed over directly because ``async for`` adds a frame per
        message.
        """
        ws = self._ws
        assert ws is not None
        await read_frames(
            ws.receive, router, self._limit, lambda data: self._socket_error(data or ws.exception())
        )

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


async def read_frames(
    receive: Callable[[], Awaitable[Any]],  # aiohttp.WSMessage-shaped: (kind, data, extra)
    router: FrameRouter,
    limit: int,
    socket_error: Callable[[Any], RealtimeError],
) -> None:
    """The hot path: receive, decode, route, until the socket closes.

    Everything per frame is bound to a local first and :meth:`FrameRouter.route` is
    inlined, with the usual case of the tick lane (:class:`CheckedTicks`): that logic
    stands twice, here and in those two, for speed. It is one function of what
    ``receive`` returns, so a test feeds it any sequence of messages and checks that
    it decides exactly as ``FrameRouter.route`` does (``tests/asyncio``).
    ``socket_error`` turns an ERROR message's data into the error to publish.
    """
    decode, errors, messages = p.decode_unchecked, router.errors, router.messages
    handler_for = router.handlers.get
    text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
    ended = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)
    # The tick lane, inlined: CheckedTicks' usual case, then the stream's deliver.
    # Without a lane, ticks go to their handler like any frame (no frame is None).
    lane = router.ticks
    tick_type: type = p.GenerationTick if lane is not None else type(None)
    if lane is None:
        lane = CheckedTicks(HotStream("unused"), errors, 0.0)
    guard = lane.guard
    ticks: HotStream[Any] = lane.stream  # Any: the loop's frame is the union type
    step = lane.step
    last = guard.last  # the guard's mark, mirrored here; synced around lane() calls
    while True:
        msg = await receive()
        kind, data, _ = msg
        if kind is text:
            if len(data) > limit:
                errors.emit(ProtocolError(f"frame of {len(data)} bytes exceeds {limit}", data))
                continue
            try:
                frame = decode(data)
            except Exception:  # rare: p.decode turns it into the ProtocolError
                try:
                    frame = p.decode(data)
                except ProtocolError as exc:
                    errors.emit(exc)
                    continue
            tap = messages.deliver  # a lone tap (a tape recorder) is called directly
            if tap is not None:
                try:
                    tap(frame)
                except Exception as exc:
                    messages.subscriber_failed(exc)
            if type(frame) is tick_type:
                seconds = frame.seconds  # type: ignore[union-attr]
                if last and seconds - last <= step:
                    if seconds > last:
                        last = seconds
                    deliver = ticks.deliver
                    if deliver is not None:
                        try:
                            deliver(frame)
                        except Exception as exc:
                            ticks.subscriber_failed(exc)
                else:
                    guard.last = last
                    lane(frame)  # type: ignore[arg-type]
                    last = guard.last
                continue
            handler = handler_for(type(frame))
            if handler is not None:
                handler(frame)
        elif kind is binary:
            errors.emit(ProtocolError("binary frame; frames must be JSON text", data))
        elif kind in ended:
            guard.last = last
            return
        elif kind is aiohttp.WSMsgType.ERROR:
            errors.emit(socket_error(data))
