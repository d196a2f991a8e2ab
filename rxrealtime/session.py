"""A realtime session: hot streams fed by a pure core, carried out by a thin I/O shell.

:class:`Session` is the conductor. It owns the streams (they exist from ``Session(...)``
on, so a subscriber registered before ``connect()`` sees everything the connection
emits), checks what the user asks for, and hands the rest to the shell
(:class:`~rxrealtime.asyncio.shell.SessionShell`), which builds the session core from a
:class:`~rxrealtime.core.policy.CoreConfig`, feeds it what happens and carries out what
it decides: links (one server session's socket and media), timers and the futures that
user calls await. The session never touches the core itself; every rule (retries,
permanent errors, acks, when streams complete) lives there.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import protocol as p
from .asyncio.shell import SessionShell
from .core.policy import CoreConfig, make_jitter
from .exceptions import ConfigError, SecretScope
from .inputs import ImageInput, check_prompt, load_image
from .models import DEFAULT_MODEL, ModelDefinition, check_speed, resolve_model, served_tier
from .options import SessionOptions, build_options
from .roles import Role, Streaming, Viewing, ViewingRoom
from .session_streams import AckLatency, SessionStreams
from .states import ConnectionState, SessionInfo
from .transports.base import TRANSPORTS, MediaTransport
from .urls import build_url, is_loopback_host, redact

if TYPE_CHECKING:
    from reactivex.scheduler.eventloop import AsyncIOScheduler

    from .asyncio.signaling import Signaling


__all__ = ["AckLatency", "ConnectionState", "Session", "SessionInfo", "Subscriber"]

logger = logging.getLogger(__name__)


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


class Session(SessionStreams):
    """A realtime video-generation session whose events are hot reactivex streams.

    ``url`` is the service base (``ws://127.0.0.1:8765``, ``wss://...``, ``https://...``);
    ``model`` a known model name or a :class:`~rxrealtime.ModelDefinition`; ``api_key``
    defaults to ``$RXREALTIME_API_KEY``. Other keyword options are those of
    :class:`~rxrealtime.options.SessionOptions` and are validated here, before any I/O.
    """

    def __init__(
        self, url: str, *, api_key: str | None = None,
        model: str | ModelDefinition = DEFAULT_MODEL, **options: Any,
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
            self.model = resolve_model(options.pop("model", DEFAULT_MODEL))
        self.options: SessionOptions = build_options(api_key, **options)
        check_speed(self.model, self.options.speed)  # warns once, as the vendor's SDK does
        path, query = role.endpoint(self.options.resolution, self.options.speed)
        query.update(TRANSPORTS[self.options.transport].query)
        key = self.options.api_key.get_secret_value()
        # No text of this process shows them while the session lives; released once it is
        # closed for good (complete_streams), or when a session never closed is collected.
        turn = (s.credential.get_secret_value() for s in self.options.ice_servers if s.credential)
        self.secret_scope = SecretScope(key, *turn)
        weakref.finalize(self, self.secret_scope.release)
        self._url = build_url(base, path, {**query, "api_key": key,
                                           "user_agent": self.options.user_agent})  # fmt: skip
        loopback = is_loopback_host(urlsplit(self._url).hostname)
        SessionStreams.__init__(self)

        o = self.options
        config = CoreConfig(
            connect_timeout_s=o.connect_timeout_s, reconnect_delays=o.reconnect.delays(),
            reconnect_budget=o.reconnect.budget, reconnect_window_s=o.reconnect.budget_window_s,
            jitter=make_jitter(o.reconnect.jitter, cap_s=max(o.reconnect.max_delay_s, 0.001)),
            prompt_ack_timeout_s=o.prompt_ack_timeout_s,
            image_ack_timeout_s=o.image_ack_timeout_s, describe=self.url, redact=self._redact,
        )  # fmt: skip
        self._shell = SessionShell(config, self, o, url=self._url, describe=self.url,
                                   loopback=loopback, redact=self._redact,
                                   make_signaling=lambda: self._make_signaling(base),
                                   view_only=role.view_only)  # fmt: skip
        self._scheduler: AsyncIOScheduler | None = None

    def _make_signaling(self, base: str) -> Signaling:
        """A WebSocket, or for a LiveKit viewer the watch-stream request (no socket)."""
        if isinstance(self.role, ViewingRoom):
            from .asyncio.watch_stream import WatchStreamSignaling

            key = self.options.api_key.get_secret_value()
            room = self.role.room.room_name
            return WatchStreamSignaling(base, room, key, redact=self._redact)
        from .asyncio.signaling import SignalingSocket

        o = self.options
        return SignalingSocket(self._url, describe=self.url, max_frame_bytes=o.max_frame_bytes,
                               heartbeat_s=o.heartbeat_s, redact=self._redact)  # fmt: skip

    # -- public properties ---------------------------------------------------------

    def __repr__(self) -> str:
        kind = "Subscriber" if self.role.view_only else "Session"
        return f"<{kind} {self.url} model={self.model.name!r} state={self.state}>"

    @property
    def url(self) -> str:
        """The signaling URL with the API key redacted."""
        return self._redact(self._url)

    @property
    def tier(self) -> str:
        """The speed tier the session is served and billed at: ``fast`` when it asked for
        ``speed="fast"`` and its model offers it, else ``standard`` (the service ignores a
        tier the model lacks). Fleets, dashboards and tapes price and record it."""
        return served_tier(self.model, self.options.speed)

    @property
    def state(self) -> ConnectionState:
        """The connection state now: the current value of ``connection_changes``."""
        return self.connection_changes.value

    @property
    def closed(self) -> bool:
        """True once the session is closed for good and every stream has completed."""
        closing = self._shell.closing
        return closing is not None and closing.done()

    @property
    def session_id(self) -> str | None:
        """The id of the latest server session (a reconnect gets a new one), ``None``
        until the server has named the first."""
        info = self._shell.info
        return info.sid if info else None

    @property
    def subscribe_token(self) -> str | None:
        """Token that lets a view-only subscriber join this session."""
        info = self._shell.info
        return info.subscribe_token if info else None

    @property
    def media_transport(self) -> MediaTransport | None:
        """The current link's media transport (e.g. its aiortc peer), if a link is open."""
        link = self._shell.current_link
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

    async def _connect(
        self, local_track: Any, prompt: tuple[str, bool] | None, image: str | None
    ) -> Session:
        await self._shell.connect(local_track, prompt, image)
        return self

    async def set_prompt(self, prompt: str, *, enhance_prompt: bool = True) -> p.PromptAck:
        """Change the prompt and wait for the server's acknowledgement."""
        self.role.check_request("prompt")
        check_prompt(prompt, self.options.max_prompt_chars)
        message = p.PromptMessage(prompt=prompt, enhance_prompt=enhance_prompt)
        ack: p.PromptAck = await self._shell.request("prompt", message, (prompt, enhance_prompt))
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
        ack: p.SetImageAck = await self._shell.request("image", message, data)
        return ack

    async def disconnect(self) -> None:
        """Close the session for good: tear everything down and complete every stream.

        Safe to call many times and concurrently; every call returns once it is done, and
        cancelling a caller does not interrupt the teardown.
        """
        await asyncio.shield(self._shell.disconnect())

    close = disconnect

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    # -- small helpers ---------------------------------------------------------------

    def complete_streams(self) -> None:
        """Closed for good: complete every stream, then release the session's secrets (a
        tape still being written holds its own share of them)."""
        super().complete_streams()
        self.secret_scope.release()

    def _redact(self, text: str) -> str:
        return redact(text, self.options.api_key.get_secret_value())


class Subscriber(Session):
    """A view-only session: receives another session's generated video and events.

    It is a :class:`Session` in the :class:`~rxrealtime.roles.Viewing` role: it sends no
    video, prompt or image (those calls raise :class:`ConfigError`). ``target`` is what
    the subscribe token names.
    """

    def __init__(self, url: str, token: str, *, api_key: str | None = None, **options: Any) -> None:
        target = p.parse_any_subscribe_token(token)
        role: Viewing
        if isinstance(target, p.RoomTarget):  # a LiveKit session: watch its room
            if options.setdefault("transport", "livekit") != "livekit":
                raise ConfigError("a LiveKit room token needs transport='livekit'")
            role = ViewingRoom(target)
        else:
            role = Viewing(target)
        self.target = target
        self._setup(url, role, api_key, options)
