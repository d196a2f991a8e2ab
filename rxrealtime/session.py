"""A realtime session: signaling socket + peer connection, published as hot streams.

The streams exist from ``Session(...)`` on, so a subscriber registered before
``connect()`` sees everything the connection emits. One :class:`_Link` is one server
session (socket, peer, tasks); a reconnect replaces the link and keeps the streams.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import enum
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
import msgspec
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from reactivex.scheduler.eventloop import AsyncIOScheduler

from . import protocol as p
from .exceptions import (
    AckTimeout,
    ConfigError,
    ConnectionLost,
    ConnectTimeout,
    NotConnected,
    ProtocolError,
    RealtimeError,
    RequestRejected,
    SessionClosed,
    SubscriberError,
    server_error,
)
from .media import BorrowedTrack
from .models import ModelDefinition, resolve_model
from .options import SessionOptions, build_options
from .streams import HotStream, StateStream
from .transport import (
    build_url,
    candidate_from_wire,
    create_peer_connection,
    gather_on_loopback,
    is_loopback_host,
    redact,
)

__all__ = ["AckLatency", "ConnectionState", "Session", "SessionInfo", "Subscriber"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
ImageInput = bytes | str | os.PathLike[str]


class ConnectionState(str, enum.Enum):
    """The states of PROTOCOL.md; ``str(state)`` is the wire-style name."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    GENERATING = "generating"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"

    def __str__(self) -> str:
        return self.value


class SessionInfo(p.SubscribeTarget, frozen=True, gc=False):
    """Identity of a server session, published on ``session_started``."""

    subscribe_token: str = ""


class AckLatency(msgspec.Struct, frozen=True, gc=False):
    """Time from sending a prompt (``kind="prompt"``) or image to its acknowledgement."""

    kind: str
    seconds: float


class _Link:
    """One server session: the socket, the peer connection and the tasks serving them."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        self.pc: RTCPeerConnection | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.reader: asyncio.Task[None] | None = None
        self.teardown: asyncio.Task[None] | None = None
        self.answered: asyncio.Future[None] = loop.create_future()
        self.peer_up: asyncio.Future[None] = loop.create_future()
        self.failed: asyncio.Future[None] = loop.create_future()
        self.failed.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.early_candidates: list[p.IceCandidate] = []
        self.remote_set = False
        self.generation_started = False
        self.announced = False  # session_started was emitted for this link
        self.ended: p.GenerationEnded | None = None
        self.closed = False

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def fail(self, error: RealtimeError) -> bool:
        """Record the first fatal error of the link; False if one was recorded already."""
        if self.failed.done():
            return False
        self.failed.set_exception(error)
        return True

    async def wait(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        """Await ``awaitable`` unless the link fails first (then raise that failure)."""
        future = asyncio.ensure_future(awaitable)
        racers: set[asyncio.Future[Any]] = {future, self.failed}
        done, _ = await asyncio.wait(racers, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if future in done:
            return future.result()
        future.cancel()
        if self.failed in done:
            self.failed.result()  # raises the recorded failure
        raise asyncio.TimeoutError


class _ConnectCall:
    """What ``connect()`` returns: ``await`` it, or use it with ``async with``."""

    def __init__(self, session: Session, coro_factory: Callable[[], Awaitable[Session]]) -> None:
        self._session = session
        self._factory = coro_factory

    def __await__(self) -> Generator[Any, None, Session]:
        return self._factory().__await__()

    async def __aenter__(self) -> Session:
        return await self._factory()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._session.disconnect()


class Session:
    """A realtime video-generation session whose events are hot reactivex streams.

    ``url`` is the service base (``ws://127.0.0.1:8765``, ``wss://...``, ``https://...``);
    ``model`` a known model name or a :class:`~rxrealtime.ModelDefinition`; ``api_key``
    defaults to ``$RXREALTIME_API_KEY``. Other keyword options are those of
    :class:`~rxrealtime.options.SessionOptions` and are validated here, before any I/O.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        model: str | ModelDefinition = "mirage_v2",
        **options: Any,
    ) -> None:
        self.options: SessionOptions = build_options(api_key, **options)
        self.model = resolve_model(model)
        query = {"model": self.model.name}
        if self.options.resolution:
            query["resolution"] = self.options.resolution
        self._configure(url, self.model.url_path, query)

    @classmethod
    def subscribe(
        cls, url: str, token: str, *, api_key: str | None = None, **options: Any
    ) -> Subscriber:
        """A view-only session that joins the session named by ``token``.

        The token is checked here, before any network call (:class:`InvalidToken`).
        """
        return Subscriber(url, token, api_key=api_key, **options)

    # -- construction helpers (shared by subclasses such as view-only subscribers) --

    def _configure(self, base: str, path: str, query: dict[str, str]) -> None:
        full = {
            **query,
            "api_key": self.options.api_key.get_secret_value(),
            "user_agent": self.options.user_agent,
        }
        self._url = build_url(base, path, full)
        self._loopback = is_loopback_host(urlsplit(self._url).hostname)
        self._init_streams()

    def _init_streams(self) -> None:
        report = self._report_subscriber_error
        self.errors: HotStream[RealtimeError] = HotStream("errors")
        self.messages: HotStream[p.ServerMessage] = HotStream("messages", report)
        self.generation_ticks: HotStream[p.GenerationTick] = HotStream("generation_ticks", report)
        self.generation_started: HotStream[p.GenerationStarted] = HotStream(
            "generation_started", report
        )
        self.generation_ended: HotStream[p.GenerationEnded] = HotStream("generation_ended", report)
        self.connection_changes: StateStream[ConnectionState] = StateStream(
            "connection_changes", ConnectionState.DISCONNECTED, report
        )
        self.session_started: HotStream[SessionInfo] = HotStream("session_started", report)
        self.prompt_acks: HotStream[p.PromptAck] = HotStream("prompt_acks", report)
        self.image_acks: HotStream[p.SetImageAck] = HotStream("image_acks", report)
        self.ack_latencies: HotStream[AckLatency] = HotStream("ack_latencies", report)
        self.queue_positions: HotStream[p.QueuePosition] = HotStream("queue_positions", report)
        self.remote_tracks: HotStream[MediaStreamTrack] = HotStream("remote_tracks", report)
        self.frames: HotStream[Any] = HotStream("frames", report)
        self.stats: HotStream[Any] = HotStream("stats", report)

        self._link: _Link | None = None
        self._closed = False  # disconnect() has begun: no new work starts
        self._closing_task: asyncio.Task[None] | None = None  # disconnect()'s one teardown
        self._recovery: asyncio.Task[None] | None = None
        self._connecting: asyncio.Future[_Link] | None = None
        self._info: SessionInfo | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._local_track: MediaStreamTrack | None = None
        self._prompt: tuple[str, bool] | None = None
        self._image: str | None = None
        self._prompt_waiters: dict[str, deque[asyncio.Future[p.PromptAck]]] = {}
        self._image_waiters: deque[asyncio.Future[p.SetImageAck]] = deque()
        self._handlers: dict[type, Callable[[Any], None]] = {
            p.GenerationTick: self.generation_ticks.emit,
            p.Answer: self._on_answer,
            p.IceCandidateMessage: self._on_candidate,
            p.SessionIdMessage: self._on_session_id,
            p.PromptAck: self._on_prompt_ack,
            p.SetImageAck: self._on_image_ack,
            p.GenerationStarted: self._on_generation_started,
            p.GenerationEnded: self._on_generation_ended,
            p.QueuePosition: self.queue_positions.emit,
            p.IceRestart: self._on_ice_restart,
            p.ErrorMessage: self._on_error,
        }

    def _all_streams(self) -> list[HotStream[Any]]:
        return [v for v in vars(self).values() if isinstance(v, HotStream)]

    # -- public properties ---------------------------------------------------------

    def __repr__(self) -> str:
        return f"<Session {self.url} model={self.model.name!r} state={self.state}>"

    @property
    def url(self) -> str:
        """The signaling URL with the API key redacted."""
        return self._redact(self._url)

    @property
    def state(self) -> ConnectionState:
        return self.connection_changes.value

    @property
    def closed(self) -> bool:
        """True once ``disconnect()`` has finished and every stream has completed."""
        return self._closing_task is not None and self._closing_task.done()

    @property
    def session_id(self) -> str | None:
        return self._info.sid if self._info else None

    @property
    def subscribe_token(self) -> str | None:
        """Token that lets a view-only subscriber join this session (PROTOCOL.md)."""
        return self._info.subscribe_token if self._info else None

    @property
    def scheduler(self) -> AsyncIOScheduler:
        """An ``AsyncIOScheduler`` on the running loop, for time-based operators."""
        if self._scheduler is None:
            self._scheduler = AsyncIOScheduler(asyncio.get_running_loop())
        return self._scheduler

    # -- public calls --------------------------------------------------------------

    def connect(
        self,
        local_track: MediaStreamTrack | None = None,
        prompt: str | None = None,
        image: ImageInput | None = None,
        *,
        enhance_prompt: bool = True,
    ) -> _ConnectCall:
        """Connect; ``await session.connect(...)`` or ``async with session.connect(...)``.

        With ``local_track`` the session sends that video and receives the generated one;
        without, it only receives. ``prompt`` and ``image`` are sent and acknowledged
        before media starts. Raises :class:`ConnectTimeout`, :class:`AuthError`,
        :class:`ServerError` or :class:`ConnectionLost`; the error is also on ``errors``.
        """
        if prompt is not None:
            self._check_prompt(prompt)
        image_data = self._load_image(image) if image is not None else None
        return _ConnectCall(
            self, lambda: self._connect(local_track, prompt, enhance_prompt, image_data)
        )

    async def set_prompt(self, prompt: str, *, enhance_prompt: bool = True) -> p.PromptAck:
        """Change the prompt and wait for the server's acknowledgement."""
        self._check_prompt(prompt)
        link = self._require_link()
        ack = await self._request_prompt(link, prompt, enhance_prompt)
        self._prompt = (prompt, enhance_prompt)
        return ack

    async def set_image(
        self,
        image: ImageInput | None,
        *,
        prompt: str | None = None,
        enhance_prompt: bool | None = None,
    ) -> p.SetImageAck:
        """Set (bytes, a path or a ``data:`` URI) or clear (``None``) the reference image."""
        if prompt is not None:
            self._check_prompt(prompt)
        data = self._load_image(image) if image is not None else None
        link = self._require_link()
        ack = await self._request_image(link, data, prompt, enhance_prompt)
        self._image = data
        return ack

    async def disconnect(self) -> None:
        """Close the session for good: tear everything down and complete every stream.

        Safe to call many times and concurrently; every call returns once it is done, and
        cancelling a caller does not interrupt the teardown.
        """
        if self._closing_task is None:
            self._closed = True
            self._closing_task = asyncio.ensure_future(self._close_for_good())
        await asyncio.shield(self._closing_task)

    async def _close_for_good(self) -> None:
        for task in (self._connecting, self._recovery):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if self._link is not None:
            await self._close_link(self._link, SessionClosed("session disconnected"), drain_s=1.0)
            self._link = None
        self._set_state(ConnectionState.DISCONNECTED)
        for stream in self._all_streams():
            if stream is not self.errors:
                stream.complete()
        self.errors.complete()

    close = disconnect

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    # -- connecting ----------------------------------------------------------------

    async def _connect(
        self,
        local_track: MediaStreamTrack | None,
        prompt: str | None,
        enhance_prompt: bool,
        image_data: str | None,
    ) -> Session:
        if self._closed:
            raise SessionClosed("this session was disconnected; create a new Session")
        if self._link is not None or self.state is not ConnectionState.DISCONNECTED:
            raise RealtimeError(f"connect() called while the session is {self.state}")
        self._local_track = local_track
        self._prompt = (prompt, enhance_prompt) if prompt is not None else None
        self._image = image_data
        self._set_state(ConnectionState.CONNECTING)
        timeout = self.options.connect_timeout_s
        waits = [0.0, *self.options.reconnect.delays()]
        self._connecting = asyncio.ensure_future(
            asyncio.wait_for(self._open_with_retries(waits, None), timeout)
        )
        try:
            link = await self._connecting
        except BaseException as exc:
            self._set_state(ConnectionState.DISCONNECTED)
            if isinstance(exc, RealtimeError):  # first: AckTimeout is a TimeoutError too
                raise
            if isinstance(exc, asyncio.TimeoutError):
                error = ConnectTimeout(f"no connection to {self.url} within {timeout:g} s")
                self.errors.emit(error)
                raise error from None
            if isinstance(exc, asyncio.CancelledError) and self._closed:
                # disconnect() cancelled us: say so rather than "cancelled"
                raise SessionClosed("the session was disconnected while connecting") from None
            raise
        finally:
            self._connecting = None
        self._link_up(link)
        return self

    def _link_up(self, link: _Link) -> None:
        self._set_state(ConnectionState.CONNECTED)
        if link.generation_started:
            self._set_state(ConnectionState.GENERATING)

    async def _open_link(self) -> _Link:
        """Open one server session; on any failure everything opened so far is closed."""
        link = _Link()
        self._link = link
        try:
            await self._open_socket(link)
            link.reader = link.spawn(self._read_loop(link))
            if self._image is not None:
                await self._request_image(link, self._image, None, None)
            if self._prompt is not None:
                await self._request_prompt(link, *self._prompt)
            await self._offer(link)
            await link.wait(link.answered)
            await link.wait(link.peer_up)
            return link
        except BaseException as exc:
            reason = exc if isinstance(exc, RealtimeError) else SessionClosed("connect aborted")
            await self._close_link(link, reason)
            if self._link is link:
                self._link = None
            raise

    async def _open_socket(self, link: _Link) -> None:
        link.http = aiohttp.ClientSession()
        try:
            link.ws = await link.http.ws_connect(
                # Frames above max_frame_bytes are reported and skipped by the read loop;
                # only a frame 8x larger makes aiohttp give up on the socket.
                self._url,
                max_msg_size=8 * self.options.max_frame_bytes,
                autoclose=True,
                heartbeat=self.options.heartbeat_s,
            )
        except aiohttp.WSServerHandshakeError as exc:
            error: RealtimeError = (
                server_error("unauthorized (HTTP 401)")
                if exc.status == 401
                else ConnectionLost(
                    f"WebSocket handshake with {self.url} failed: HTTP {exc.status}"
                )
            )
            self.errors.emit(error)
            raise error from None
        except (aiohttp.ClientError, OSError) as exc:
            error = ConnectionLost(f"cannot reach {self.url}: {self._redact(str(exc))}")
            self.errors.emit(error)
            raise error from None

    async def _offer(self, link: _Link, extra_ice: Sequence[dict[str, Any]] = ()) -> None:
        """A new peer connection for ``link``, offered to the server."""
        ice = [*(s.as_dict() for s in self.options.ice_servers), *extra_ice]
        pc = create_peer_connection(ice)
        self._wire_peer(link, pc)
        if self._local_track is not None:
            pc.addTransceiver(BorrowedTrack(self._local_track), direction="sendrecv")
        else:
            pc.addTransceiver("video", direction="recvonly")
        offer = await pc.createOffer()
        with gather_on_loopback(self._loopback):
            await pc.setLocalDescription(offer)
        await self._send(link, p.Offer(sdp=pc.localDescription.sdp))

    def _wire_peer(self, link: _Link, pc: RTCPeerConnection) -> None:
        link.pc = pc

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if link.pc is not pc:
                return  # an old peer replaced by an ice-restart
            state = pc.connectionState
            logger.debug("peer connection state %s", state)
            if state == "connected" and not link.peer_up.done():
                link.peer_up.set_result(None)
            elif state in ("failed", "closed") and not link.closed:
                self._link_lost(link, ConnectionLost(f"peer connection {state}"))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind != "video":
                return
            self.remote_tracks.emit(track)
            link.spawn(self._pump_frames(track))

        if self.options.stats_interval_s:
            link.spawn(self._pump_stats(link, pc, self.options.stats_interval_s))

    async def _pump_frames(self, track: MediaStreamTrack) -> None:
        emit = self.frames.emit
        try:
            while True:
                emit(await track.recv())
        except MediaStreamError:
            pass

    async def _pump_stats(self, link: _Link, pc: RTCPeerConnection, interval: float) -> None:
        while link.pc is pc:
            await asyncio.sleep(interval)
            if pc.connectionState == "connected" and self.stats.subscriber_count:
                self.stats.emit(await pc.getStats())

    # -- the hot path: socket -> decode -> streams -------------------------------

    async def _read_loop(self, link: _Link) -> None:
        """The hot path. Everything per frame is bound to a local first; routing is
        inlined (``_dispatch`` is the same logic as a method) and ``messages`` is skipped
        while nobody listens, because a function call is a large part of the budget."""
        assert link.ws is not None
        ws = link.ws
        decode, errors, messages = p.decode_unchecked, self.errors, self.messages
        handler_for = self._handlers.get
        text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
        ended = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)
        limit = self.options.max_frame_bytes
        receive = ws.receive  # not `async for`: its __anext__ frame costs ~10% per frame
        try:
            while True:
                msg = await receive()
                if msg.type is text:
                    data = msg.data
                    if len(data) > limit:
                        error = ProtocolError(f"frame of {len(data)} chars exceeds {limit}", data)
                        errors.emit(error)
                        continue
                    try:
                        frame = decode(data)
                    except Exception:  # rare: p.decode turns it into the ProtocolError
                        try:
                            frame = p.decode(data)
                        except ProtocolError as exc:
                            errors.emit(exc)
                            continue
                    if messages._observers:
                        messages.emit(frame)
                    handler = handler_for(type(frame))
                    if handler is not None:
                        handler(frame)
                elif msg.type is binary:
                    errors.emit(ProtocolError("binary frame; frames must be JSON text", msg.data))
                elif msg.type in ended:
                    break
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    errors.emit(ProtocolError(f"signaling socket error: {ws.exception()!r}"))
        finally:
            if not link.closed:
                code = ws.close_code
                self._link_lost(link, ConnectionLost(f"signaling socket closed (code {code})"))

    def _dispatch(self, frame: p.ServerMessage) -> None:
        """Route one decoded frame (the read loop inlines this)."""
        if self.messages._observers:
            self.messages.emit(frame)
        handler = self._handlers.get(type(frame))
        if handler is not None:
            handler(frame)

    # -- frame handlers ------------------------------------------------------------

    def _on_answer(self, frame: p.Answer) -> None:
        link = self._link
        if link is None or link.pc is None:
            self.errors.emit(ProtocolError("answer without a pending offer"))
            return
        link.spawn(self._apply_answer(link, link.pc, frame.sdp))

    async def _apply_answer(self, link: _Link, pc: RTCPeerConnection, sdp: str) -> None:
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:  # aiortc raises ValueError and others for bad SDP
            error = ProtocolError(f"unusable SDP answer: {exc}", sdp)
            self.errors.emit(error)
            link.fail(error)
            self._link_lost(link, error)
            return
        link.remote_set = True
        pending, link.early_candidates = link.early_candidates, []
        for candidate in pending:
            await self._add_candidate(pc, candidate)
        if not link.answered.done():
            link.answered.set_result(None)

    def _on_candidate(self, frame: p.IceCandidateMessage) -> None:
        link = self._link
        if link is None or link.pc is None:
            return
        if not link.remote_set:
            link.early_candidates.append(frame.candidate)
        else:
            link.spawn(self._add_candidate(link.pc, frame.candidate))

    async def _add_candidate(self, pc: RTCPeerConnection, candidate: p.IceCandidate) -> None:
        try:
            await pc.addIceCandidate(candidate_from_wire(candidate))
        except Exception as exc:
            self.errors.emit(ProtocolError(f"unusable ICE candidate: {exc}", candidate.candidate))

    def _on_session_id(self, frame: p.SessionIdMessage) -> None:
        token = p.make_subscribe_token(frame.session_id, frame.server_ip, frame.server_port)
        self._info = SessionInfo(
            sid=frame.session_id, ip=frame.server_ip, port=frame.server_port, subscribe_token=token
        )
        # One link is one server session. A server repeats session_id after every answer
        # (an ice-restart re-offers on the same link), but billing operators take
        # session_started as "ticks restart at 0": announce each link once.
        link = self._link
        if link is not None and not link.announced:
            link.announced = True
            self.session_started.emit(self._info)

    def _on_prompt_ack(self, frame: p.PromptAck) -> None:
        waiters = self._prompt_waiters.get(frame.prompt)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(frame)
                break
        self.prompt_acks.emit(frame)

    def _on_image_ack(self, frame: p.SetImageAck) -> None:
        while self._image_waiters:
            waiter = self._image_waiters.popleft()
            if not waiter.done():
                waiter.set_result(frame)
                break
        self.image_acks.emit(frame)

    def _on_generation_started(self, frame: p.GenerationStarted) -> None:
        link = self._link
        if link is not None:
            link.generation_started = True
            if self.state is ConnectionState.CONNECTED:
                self._set_state(ConnectionState.GENERATING)
        self.generation_started.emit(frame)

    def _on_generation_ended(self, frame: p.GenerationEnded) -> None:
        if self._link is not None:
            self._link.ended = frame
        self.generation_ended.emit(frame)

    def _on_error(self, frame: p.ErrorMessage) -> None:
        error = server_error(self._redact(frame.error))
        self.errors.emit(error)
        link = self._link
        if link is None:
            return
        if self.state in (ConnectionState.CONNECTING, ConnectionState.RECONNECTING):
            link.fail(error)  # the pending connect raises this error
        elif error.permanent:
            link.fail(error)
            self._link_lost(link, error)

    def _on_ice_restart(self, frame: p.IceRestart) -> None:
        link = self._link
        if link is None or link.pc is None:
            return
        link.spawn(self._guarded_ice_restart(link, frame.turn_config))

    async def _guarded_ice_restart(self, link: _Link, turn: p.TurnConfig) -> None:
        try:
            await self._ice_restart(link, turn)
        except Exception as exc:
            self._link_lost(link, ConnectionLost(f"ICE restart failed: {exc!r}"))

    async def _ice_restart(self, link: _Link, turn: p.TurnConfig) -> None:
        """Rebuild the peer connection through the given TURN server and offer again."""
        old = link.pc
        link.remote_set = False
        link.answered = asyncio.get_running_loop().create_future()
        link.peer_up = asyncio.get_running_loop().create_future()
        link.pc = None  # first: the old peer's "closed" event must not count as a loss
        if old is not None:
            await old.close()
        turn_server = {"urls": turn.server_url, "username": turn.username,
                       "credential": turn.credential}  # fmt: skip
        await self._offer(link, extra_ice=[turn_server])

    # -- requests with acknowledgements --------------------------------------------

    async def _request_prompt(self, link: _Link, prompt: str, enhance_prompt: bool) -> p.PromptAck:
        waiter: asyncio.Future[p.PromptAck] = asyncio.get_running_loop().create_future()
        self._prompt_waiters.setdefault(prompt, deque()).append(waiter)
        try:
            started = time.perf_counter()
            await self._send(link, p.PromptMessage(prompt=prompt, enhance_prompt=enhance_prompt))
            timeout = self.options.prompt_ack_timeout_s
            ack = await self._await_ack(link, waiter, timeout, f"prompt_ack for {prompt[:40]!r}")
            self.ack_latencies.emit(
                AckLatency(kind="prompt", seconds=time.perf_counter() - started)
            )
        finally:
            waiters = self._prompt_waiters.get(prompt)
            if waiters is not None:
                with contextlib.suppress(ValueError):
                    waiters.remove(waiter)
                if not waiters:
                    del self._prompt_waiters[prompt]
        if not ack.success:
            error = RequestRejected(f"prompt rejected: {ack.error or 'no reason given'}")
            self.errors.emit(error)
            raise error
        return ack

    async def _request_image(
        self, link: _Link, data: str | None, prompt: str | None, enhance_prompt: bool | None
    ) -> p.SetImageAck:
        waiter: asyncio.Future[p.SetImageAck] = asyncio.get_running_loop().create_future()
        self._image_waiters.append(waiter)
        try:
            message = p.SetImageMessage(
                image_data=data, prompt=prompt, enhance_prompt=enhance_prompt
            )
            started = time.perf_counter()
            await self._send(link, message)
            timeout = self.options.image_ack_timeout_s
            ack = await self._await_ack(link, waiter, timeout, "set_image_ack")
            self.ack_latencies.emit(AckLatency(kind="image", seconds=time.perf_counter() - started))
        finally:
            with contextlib.suppress(ValueError):
                self._image_waiters.remove(waiter)
        if not ack.success:
            error = RequestRejected(f"image rejected: {ack.error or 'no reason given'}")
            self.errors.emit(error)
            raise error
        return ack

    async def _await_ack(
        self, link: _Link, waiter: asyncio.Future[T], timeout: float, what: str
    ) -> T:
        try:
            return await link.wait(waiter, timeout)
        except asyncio.TimeoutError:
            error = AckTimeout(f"no {what} within {timeout:g} s")
            self.errors.emit(error)
            raise error from None

    async def _send(self, link: _Link, message: p.ClientMessage) -> None:
        if link.failed.done():
            link.failed.result()  # raise the root cause (e.g. the server's error), not a symptom
        ws = link.ws
        if ws is None or ws.closed:
            raise ConnectionLost("signaling socket is closed")
        try:
            await ws.send_str(p.encode(message).decode())
        except (ConnectionError, RuntimeError) as exc:
            raise ConnectionLost(f"cannot send on the signaling socket: {exc}") from None

    # -- losing and closing links --------------------------------------------------

    def _link_lost(self, link: _Link, error: RealtimeError) -> None:
        """The link died (socket closed, peer failed, permanent error)."""
        if link.closed:
            return
        if link.fail(error) and link.ended is None:
            self.errors.emit(error)
        established = self.state in (ConnectionState.CONNECTED, ConnectionState.GENERATING)
        if self._link is link and established and self._recovery is None and not self._closed:
            self._recovery = asyncio.ensure_future(self._recover(link))

    async def _recover(self, link: _Link) -> None:
        """After an unexpected loss: reconnect with backoff, or settle as disconnected."""
        try:
            cause = link.failed.exception() if link.failed.done() else None
            await self._close_link(link, SessionClosed("link lost"))
            self._link = None
            delays = self.options.reconnect.delays()
            if _retryable(cause) and link.ended is None and delays:
                self._set_state(ConnectionState.RECONNECTING)
                with contextlib.suppress(RealtimeError):
                    new = await self._open_with_retries(delays, self.options.connect_timeout_s)
                    self._recovery = None
                    self._link_up(new)
                    return
            # Nothing will bring this session back (the server ended it, a permanent
            # error, or no attempt left): it is closed for good and its streams complete.
            self._recovery = None
            await self.disconnect()
        finally:
            if self._recovery is asyncio.current_task():
                self._recovery = None

    async def _open_with_retries(
        self, waits: Sequence[float], attempt_timeout: float | None
    ) -> _Link:
        """Open a link after each wait in turn until one works.

        Transient failures are retried; a permanent one, or the last failure, is raised.
        Every failure is on ``errors`` already, so callers need not publish it.
        """
        error: BaseException = ConnectionLost("no connection attempt was made")
        for attempt, wait in enumerate(waits, 1):
            if wait:
                await asyncio.sleep(wait)
            if self._closed:
                raise SessionClosed("the session was disconnected while connecting")
            try:
                return await asyncio.wait_for(self._open_link(), attempt_timeout)
            except RealtimeError as exc:  # first: AckTimeout is a TimeoutError too
                if not _retryable(exc):
                    raise
                error = exc
            except asyncio.TimeoutError:
                error = ConnectTimeout(
                    f"attempt {attempt}: no connection within {attempt_timeout} s"
                )
                self.errors.emit(error)
            except Exception as exc:  # e.g. aiortc rejecting an SDP: still transient
                error = ConnectionLost(f"attempt {attempt} failed: {exc!r}")
                self.errors.emit(error)
            logger.info("connection attempt %s failed: %s", attempt, error)
        raise error

    async def _close_link(
        self, link: _Link, reason: RealtimeError, *, drain_s: float = 0.0
    ) -> None:
        """Tear a link down once; callers share one teardown, which their cancellation
        cannot interrupt (a half-closed link would leak its peer, socket or session)."""
        if link.teardown is None:
            link.closed = True  # at once: the read loop and the peer callbacks check it
            link.fail(reason)
            link.teardown = asyncio.ensure_future(self._teardown(link, drain_s))
        await asyncio.shield(link.teardown)

    async def _teardown(self, link: _Link, drain_s: float) -> None:
        """With ``drain_s``, first finish the WebSocket closing handshake.

        Draining matters for billing: a tick the server sent before it saw our close
        frame is billed, so the read loop must still see it. aiohttp's ``close()``
        discards frames that arrive while closing, so the close frame is sent through
        its writer and the read loop reads on until the server's close arrives.
        """
        ws, reader = link.ws, link.reader
        if drain_s and ws is not None and not ws.closed and reader is not None:
            writer = getattr(ws, "_writer", None)  # aiohttp has no public "send close only"
            with contextlib.suppress(Exception):
                if writer is not None:
                    await writer.close(aiohttp.WSCloseCode.OK, b"")
                    await asyncio.wait_for(asyncio.shield(reader), drain_s)
        tasks = list(link.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Bounded: a wedged peer or socket must not make disconnect() hang.
        for closing in (link.pc, link.ws, link.http):
            if closing is None:
                continue
            try:
                await asyncio.wait_for(closing.close(), 5.0)
            except (asyncio.TimeoutError, Exception) as exc:
                logger.warning("closing %s failed: %r", type(closing).__name__, exc)

    # -- small helpers ---------------------------------------------------------------

    def _set_state(self, state: ConnectionState) -> None:
        if state is not self.state:
            logger.info("session state %s", state)
        self.connection_changes.emit(state)

    def _report_subscriber_error(self, stream: str, error: Exception) -> None:
        logger.warning("subscriber of %s raised %r", stream, error)
        self.errors.emit(SubscriberError(stream, error))

    def _require_link(self) -> _Link:
        if self._closed:
            raise SessionClosed("this session was disconnected")
        if self._link is None or self.state not in (
            ConnectionState.CONNECTED,
            ConnectionState.GENERATING,
            ConnectionState.CONNECTING,
        ):
            raise NotConnected(f"the session is {self.state}; connect() first")
        return self._link

    def _check_prompt(self, prompt: str) -> None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ConfigError("prompt must be a non-empty string")
        if len(prompt) > self.options.max_prompt_chars:
            raise ConfigError(
                f"prompt is {len(prompt)} characters; the limit is {self.options.max_prompt_chars}"
            )

    def _load_image(self, image: ImageInput) -> str:
        """Base64 of an image given as bytes, a path or a ``data:`` URI."""
        limit = self.options.max_image_bytes
        if isinstance(image, (bytes, bytearray, memoryview)):
            raw = bytes(image)
        elif isinstance(image, str) and image.startswith("data:"):
            header, _, payload = image.partition(",")
            if ";base64" not in header or not payload:
                raise ConfigError("a data URI image must be base64: data:image/png;base64,...")
            try:
                raw = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                raise ConfigError("the data URI image is not valid base64") from None
        elif isinstance(image, (str, os.PathLike)):
            path = Path(image)
            if not path.is_file():
                raise ConfigError(f"image file not found: {path}")
            if path.stat().st_size > limit:
                raise ConfigError(f"image file {path} is larger than {limit} bytes")
            raw = path.read_bytes()
        else:
            raise ConfigError(
                f"image must be bytes, a path or a data URI, not {type(image).__name__}"
            )
        if not raw:
            raise ConfigError("image is empty")
        if len(raw) > limit:
            raise ConfigError(f"image is {len(raw)} bytes; the limit is {limit}")
        return base64.b64encode(raw).decode("ascii")

    def _redact(self, text: str) -> str:
        return redact(text, self.options.api_key.get_secret_value())


class Subscriber(Session):
    """A view-only session: receives another session's generated video and events.

    It sends no video, prompt or image; those calls raise :class:`ConfigError`.
    ``target`` is what the subscribe token names.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        api_key: str | None = None,
        model: str | ModelDefinition = "mirage_v2",
        **options: Any,
    ) -> None:
        self.target = p.parse_subscribe_token(token)
        self.options = build_options(api_key, **options)
        self.model = resolve_model(model)
        path = "/subscribe/" + quote(self.target.sid, safe="")
        self._configure(url, path, {"IP": self.target.ip, "port": str(self.target.port)})

    def __repr__(self) -> str:
        return f"<Subscriber {self.url} session={self.target.sid!r} state={self.state}>"

    def connect(
        self,
        local_track: MediaStreamTrack | None = None,
        prompt: str | None = None,
        image: ImageInput | None = None,
        *,
        enhance_prompt: bool = True,
    ) -> _ConnectCall:
        if local_track is not None or prompt is not None or image is not None:
            raise ConfigError("a view-only subscriber cannot send video, prompts or images")
        return super().connect()

    async def set_prompt(self, prompt: str, *, enhance_prompt: bool = True) -> p.PromptAck:
        raise ConfigError("a view-only subscriber cannot change the prompt")

    async def set_image(
        self,
        image: ImageInput | None,
        *,
        prompt: str | None = None,
        enhance_prompt: bool | None = None,
    ) -> p.SetImageAck:
        raise ConfigError("a view-only subscriber cannot change the image")


def _retryable(error: BaseException | None) -> bool:
    """Whether PROTOCOL.md calls this failure transient (worth a reconnect)."""
    if isinstance(error, (ConfigError, RequestRejected, SessionClosed)):
        return False
    return not getattr(error, "permanent", False)
