"""A realtime session: hot streams fed by a pure core, carried out by a thin I/O shell.

:class:`Session` is the conductor. It owns the streams (they exist from ``Session(...)``
on, so a subscriber registered before ``connect()`` sees everything the connection
emits), feeds the :class:`~rxrealtime.core.SessionCore` what happens, and carries out
what the core decides with the shell: :class:`~rxrealtime.link.Link` (one server
session's socket and media), timers and the futures that user calls await. Every rule
(retries, permanent errors, acks, when streams complete) lives in the core.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from . import protocol as p
from .core import (
    CancelTimer,
    CloseForGood,
    CloseLink,
    ConnectAborted,
    ConnectFinished,
    ConnectionState,
    ConnectRequested,
    CoreConfig,
    Decision,
    DisconnectRequested,
    Emit,
    Event,
    FailAck,
    FrameReceived,
    LinkDown,
    LinkUp,
    OpenLink,
    SessionCore,
    SessionInfo,
    SetState,
    SettleAck,
    StartTimer,
)
from .exceptions import ConnectionLost, RealtimeError, SessionClosed, SubscriberError
from .inputs import ImageInput, check_prompt, load_image
from .media_transport import MediaContext, MediaTransport, load_transport
from .models import ModelDefinition, resolve_model
from .options import SessionOptions, build_options
from .roles import Role, Streaming, Viewing
from .streams import HotStream, StateStream
from .urls import build_url, is_loopback_host, redact

if TYPE_CHECKING:
    from reactivex.scheduler.eventloop import AsyncIOScheduler

    from .link import Link

__all__ = ["AckLatency", "ConnectionState", "Session", "SessionInfo", "Subscriber"]

logger = logging.getLogger(__name__)

#: Control frames go to the core; ticks and queue positions go straight to their streams.
CONTROL_FRAMES = (p.SessionIdMessage, p.PromptAck, p.SetImageAck, p.GenerationStarted,
                  p.GenerationEnded, p.ErrorMessage)  # fmt: skip


class AckLatency(msgspec.Struct, frozen=True, gc=False):
    """Time from sending a prompt (``kind="prompt"``) or image to its acknowledgement."""

    kind: str
    seconds: float


class _ConnectCall:
    """What ``connect()`` returns: ``await`` it, or use it with ``async with``."""

    def __init__(self, session: Session, factory: Callable[[], Awaitable[Session]]) -> None:
        self._session, self._factory = session, factory

    def __await__(self) -> Generator[Any, None, Session]:
        return self._factory().__await__()

    async def __aenter__(self) -> Session:
        return await self._factory()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        await self._session.disconnect()


class Session:
    """A realtime video-generation session whose events are hot reactivex streams.

    ``url`` is the service base (``ws://127.0.0.1:8765``, ``wss://...``, ``https://...``);
    ``model`` a known model name or a :class:`~rxrealtime.ModelDefinition`; ``api_key``
    defaults to ``$RXREALTIME_API_KEY``. Other keyword options are those of
    :class:`~rxrealtime.options.SessionOptions` and are validated here, before any I/O.
    """

    def __init__(
        self, url: str, *, api_key: str | None = None,
        model: str | ModelDefinition = "mirage_v2", **options: Any,
    ) -> None:  # fmt: skip
        self._setup(url, Streaming(resolve_model(model)), api_key, options)

    @classmethod
    def subscribe(
        cls, url: str, token: str, *, api_key: str | None = None, **options: Any
    ) -> Subscriber:
        """A view-only session that joins the session named by ``token``.

        The token is checked here, before any network call (:class:`InvalidToken`).
        """
        return Subscriber(url, token, api_key=api_key, **options)

    view_only = subscribe
    """A clearer name for :meth:`subscribe`."""

    def _setup(self, base: str, role: Role, api_key: str | None, options: Any) -> None:
        self.role = role
        if isinstance(role, Streaming):
            self.model = role.model
        else:  # a viewer may name the model it watches, for dashboards and prices
            self.model = resolve_model(options.pop("model", "mirage_v2"))
        self.options: SessionOptions = build_options(api_key, **options)
        path, query = role.endpoint(self.options.resolution)
        key = self.options.api_key.get_secret_value()
        self._url = build_url(base, path, {**query, "api_key": key,
                                           "user_agent": self.options.user_agent})  # fmt: skip
        self._loopback = is_loopback_host(urlsplit(self._url).hostname)
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
        self.remote_tracks: HotStream[Any] = HotStream("remote_tracks", report)
        self.frames: HotStream[Any] = HotStream("frames", report)
        self.stats: HotStream[Any] = HotStream("stats", report)
        self._streams = {v.name: v for v in vars(self).values() if isinstance(v, HotStream)}

        o = self.options
        self._core = SessionCore(CoreConfig(
            connect_timeout_s=o.connect_timeout_s, reconnect_delays=o.reconnect.delays(),
            prompt_ack_timeout_s=o.prompt_ack_timeout_s,
            image_ack_timeout_s=o.image_ack_timeout_s, describe=self.url, redact=self._redact,
        ))  # fmt: skip
        self._links: dict[int, Link] = {}
        self._teardowns: set[asyncio.Task[None]] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._connected: asyncio.Future[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._local_track: Any = None
        self._scheduler: AsyncIOScheduler | None = None
        self._appliers: dict[type[Decision], Callable[[Any], None]] = {
            SetState: self._set_state, Emit: self._emit, OpenLink: self._open_link,
            CloseLink: self._close_link, StartTimer: self._start_timer,
            CancelTimer: self._cancel_timer, SettleAck: self._settle, FailAck: self._fail,
            ConnectFinished: self._connect_finished, CloseForGood: self._close_for_good,
        }  # fmt: skip

    # -- public properties ---------------------------------------------------------

    def __repr__(self) -> str:
        kind = "Subscriber" if self.role.view_only else "Session"
        return f"<{kind} {self.url} model={self.model.name!r} state={self.state}>"

    @property
    def url(self) -> str:
        """The signaling URL with the API key redacted."""
        return self._redact(self._url)

    @property
    def state(self) -> ConnectionState:
        return self.connection_changes.value

    @property
    def closed(self) -> bool:
        """True once the session is closed for good and every stream has completed."""
        return self._closing is not None and self._closing.done()

    @property
    def session_id(self) -> str | None:
        info = self._core.info
        return info.sid if info else None

    @property
    def subscribe_token(self) -> str | None:
        """Token that lets a view-only subscriber join this session."""
        info = self._core.info
        return info.subscribe_token if info else None

    @property
    def media_transport(self) -> MediaTransport | None:
        """The current link's media transport (e.g. its aiortc peer), if a link is open."""
        link = self._links.get(self._core.link or 0)
        return link.media if link is not None else None

    @property
    def scheduler(self) -> AsyncIOScheduler:
        """An ``AsyncIOScheduler`` on the running loop, for time-based operators."""
        if self._scheduler is None:
            from reactivex.scheduler.eventloop import AsyncIOScheduler

            self._scheduler = AsyncIOScheduler(asyncio.get_running_loop())
        return self._scheduler

    # -- public calls --------------------------------------------------------------

    def connect(
        self, local_track: Any = None, prompt: str | None = None,
        image: ImageInput | None = None, *, enhance_prompt: bool = True,
    ) -> _ConnectCall:  # fmt: skip
        """Connect; ``await session.connect(...)`` or ``async with session.connect(...)``.

        With ``local_track`` the session sends that video and receives the generated one;
        without, it only receives. ``prompt`` and ``image`` are sent and acknowledged
        before media starts. Raises :class:`ConnectTimeout`, :class:`AuthError`,
        :class:`ServerError` or :class:`ConnectionLost`; the error is also on ``errors``.
        """
        self.role.check_connect(local_track, prompt, image)
        if prompt is not None:
            check_prompt(prompt, self.options.max_prompt_chars)
        data = load_image(image, self.options.max_image_bytes) if image is not None else None
        wanted = (prompt, enhance_prompt) if prompt is not None else None
        return _ConnectCall(self, lambda: self._connect(local_track, wanted, data))

    async def set_prompt(self, prompt: str, *, enhance_prompt: bool = True) -> p.PromptAck:
        """Change the prompt and wait for the server's acknowledgement."""
        self.role.check_request("prompt")
        check_prompt(prompt, self.options.max_prompt_chars)
        message = p.PromptMessage(prompt=prompt, enhance_prompt=enhance_prompt)
        ack: p.PromptAck = await self._request("prompt", message, (prompt, enhance_prompt))
        return ack

    async def set_image(
        self, image: ImageInput | None, *, prompt: str | None = None,
        enhance_prompt: bool | None = None,
    ) -> p.SetImageAck:  # fmt: skip
        """Set (bytes, a path or a ``data:`` URI) or clear (``None``) the reference image."""
        self.role.check_request("image")
        if prompt is not None:
            check_prompt(prompt, self.options.max_prompt_chars)
        data = load_image(image, self.options.max_image_bytes) if image is not None else None
        message = p.SetImageMessage(image_data=data, prompt=prompt, enhance_prompt=enhance_prompt)
        ack: p.SetImageAck = await self._request("image", message, data)
        return ack

    async def disconnect(self) -> None:
        """Close the session for good: tear everything down and complete every stream.

        Safe to call many times and concurrently; every call returns once it is done, and
        cancelling a caller does not interrupt the teardown.
        """
        if self._closing is None:
            self._apply(self._core.feed(DisconnectRequested()))
        assert self._closing is not None
        await asyncio.shield(self._closing)

    close = disconnect

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    # -- feeding the core ----------------------------------------------------------

    def _feed(self, event: Event) -> None:
        """An event from the shell; the core's answer is carried out at once."""
        try:
            decisions = self._core.feed(event)
        except RealtimeError:  # a shell event the table refuses is our bug: say so
            logger.exception("session core refused %r", event)
            return
        self._apply(decisions)

    def _apply(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            self._appliers[type(decision)](decision)

    async def _connect(
        self, local_track: Any, prompt: tuple[str, bool] | None, image: str | None
    ) -> Session:
        if self._core.closed:
            raise SessionClosed("this session was disconnected; create a new Session")
        decisions = self._core.feed(ConnectRequested(prompt, image))  # raises if not idle
        self._local_track = local_track
        self._connected = connected = asyncio.get_running_loop().create_future()
        self._apply(decisions)
        try:
            await asyncio.shield(connected)
        except asyncio.CancelledError:
            if not connected.done() and self._core.state is ConnectionState.CONNECTING:
                self._feed(ConnectAborted())
            raise
        return self

    async def _request(
        self, kind: str, message: p.ClientMessage, remember: object, link_number: int | None = None
    ) -> Any:
        key = message.prompt if isinstance(message, p.PromptMessage) else None
        ack, decisions = self._core.request(kind, key, remember, link=link_number)
        future = self._acks[ack.id] = asyncio.get_running_loop().create_future()
        self._apply(decisions)
        link = self._links[self._core.link or 0]
        started = time.perf_counter()
        try:
            await link.socket.send(message)
            frame = await future
        finally:
            if self._acks.pop(ack.id, None) is not None and not future.done():
                self._apply(self._core.abandon(ack.id))  # never sent, or the caller gave up
        self.ack_latencies.emit(AckLatency(kind=kind, seconds=time.perf_counter() - started))
        return frame

    # -- carrying out decisions ----------------------------------------------------

    def _set_state(self, decision: SetState) -> None:
        logger.info("session state %s", decision.state)
        self.connection_changes.emit(decision.state)

    def _emit(self, decision: Emit) -> None:
        self._streams[decision.stream].emit(decision.value)

    def _open_link(self, decision: OpenLink) -> None:
        from .link import Link  # the I/O shell loads on first use (aiohttp)
        from .signaling import SignalingSocket

        socket = SignalingSocket(
            self._url, describe=self.url, max_frame_bytes=self.options.max_frame_bytes,
            heartbeat_s=self.options.heartbeat_s, redact=self._redact,
        )  # fmt: skip
        link = self._links[decision.link] = Link(decision.link, socket)
        link.start_opening(self._run_link(link, decision))

    async def _run_link(self, link: Link, decision: OpenLink) -> None:
        """Open one server session: socket, then image and prompt, then media."""
        from .signaling import FrameRouter

        number = link.number
        try:
            await link.socket.open()
            media = link.media = self._new_media(number)
            handlers: dict[type, Callable[[Any], None]] = {
                p.GenerationTick: self.generation_ticks.emit,
                p.QueuePosition: self.queue_positions.emit,
            }
            control = self._control(number)
            handlers.update({kind: control for kind in CONTROL_FRAMES})
            handlers.update({kind: media.on_frame for kind in media.handles})
            router = FrameRouter(handlers, self.messages, self.errors)
            lost = self._lost(number)
            link.start_reading(
                router, lambda code: lost(ConnectionLost(f"signaling socket closed (code {code})"))
            )
            if decision.image is not None:
                message = p.SetImageMessage(image_data=decision.image)
                await self._request("image", message, None, number)
            if decision.prompt is not None:
                text, enhance = decision.prompt
                await self._request("prompt", p.PromptMessage(text, enhance), None, number)
            await media.start()
        except RealtimeError as exc:
            self._feed(LinkDown(number, exc))
        except Exception as exc:  # e.g. aiortc rejecting an SDP: still transient
            error = ConnectionLost(f"attempt {decision.attempt} failed: {exc!r}")
            self._feed(LinkDown(number, error))
        else:
            self._feed(LinkUp(number))

    def _new_media(self, number: int) -> MediaTransport:
        context = MediaContext(
            send=self._links[number].socket.send, lost=self._lost(number),
            problem=self.errors.emit, track_received=self.remote_tracks.emit,
            frame_received=self.frames.emit, stats_wanted=lambda: bool(self.stats.observers),
            stats_received=self.stats.emit, local_track=self._local_track,
            ice_servers=[s.as_dict() for s in self.options.ice_servers],
            loopback=self._loopback, stats_interval_s=self.options.stats_interval_s,
        )  # fmt: skip
        return load_transport(self.options.transport)(context)

    def _control(self, number: int) -> Callable[[p.ServerMessage], None]:
        return lambda frame: self._feed(FrameReceived(number, frame))

    def _lost(self, number: int) -> Callable[[RealtimeError], None]:
        return lambda error: self._feed(LinkDown(number, error))

    def _close_link(self, decision: CloseLink) -> None:
        link = self._links.pop(decision.link, None)
        if link is not None:
            task = link.close(decision.drain_s)
            self._teardowns.add(task)
            task.add_done_callback(self._teardowns.discard)

    def _start_timer(self, decision: StartTimer) -> None:
        self._cancel_timer(CancelTimer(decision.name))
        loop = asyncio.get_running_loop()
        self._timers[decision.name] = loop.call_later(
            decision.delay_s, self._fire, decision.name, decision.fire
        )

    def _cancel_timer(self, decision: CancelTimer) -> None:
        handle = self._timers.pop(decision.name, None)
        if handle is not None:
            handle.cancel()

    def _fire(self, name: str, event: Event) -> None:
        self._timers.pop(name, None)
        self._feed(event)

    def _settle(self, decision: SettleAck) -> None:
        future = self._acks.get(decision.ack)
        if future is not None and not future.done():
            future.set_result(decision.frame)

    def _fail(self, decision: FailAck) -> None:
        future = self._acks.get(decision.ack)
        if future is not None and not future.done():
            future.set_exception(decision.error)

    def _connect_finished(self, decision: ConnectFinished) -> None:
        future = self._connected
        if future is None or future.done():
            return
        if decision.error is None:
            future.set_result(None)
        else:
            future.set_exception(decision.error)

    def _close_for_good(self, decision: CloseForGood) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._closing = asyncio.ensure_future(self._finish())

    async def _finish(self) -> None:
        """Wait for every teardown, then complete the streams (``errors`` last)."""
        while self._teardowns:
            await asyncio.gather(*self._teardowns, return_exceptions=True)
        for stream in self._streams.values():
            if stream is not self.errors:
                stream.complete()
        self.errors.complete()

    # -- small helpers ---------------------------------------------------------------

    def _report_subscriber_error(self, stream: str, error: Exception) -> None:
        logger.warning("subscriber of %s raised %r", stream, error)
        self.errors.emit(SubscriberError(stream, error))

    def _redact(self, text: str) -> str:
        return redact(text, self.options.api_key.get_secret_value())


class Subscriber(Session):
    """A view-only session: receives another session's generated video and events.

    It is a :class:`Session` in the :class:`~rxrealtime.roles.Viewing` role: it sends no
    video, prompt or image (those calls raise :class:`ConfigError`). ``target`` is what
    the subscribe token names.
    """

    def __init__(self, url: str, token: str, *, api_key: str | None = None, **options: Any) -> None:
        role = Viewing(p.parse_subscribe_token(token))
        self.target = role.target
        self._setup(url, role, api_key, options)
