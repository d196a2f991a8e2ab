"""From a Session's streams to the vendor's callbacks.

:class:`Callbacks` is the vendor's ``on``/``off`` registry with its buffering: events
raised while ``connect()`` runs are kept and dispatched on the loop iteration after it
returns, so handlers registered right after ``await RealtimeClient.connect(...)`` still
see ``connecting`` and ``connected``. A callback that raises is logged, as the vendor
logs it, and also published on the session's ``errors`` as a
:class:`~rxrealtime.SubscriberError`.

:class:`SessionBridge` subscribes to the session's streams *before* it connects (they
are hot; nothing is missed) and turns them into those events:

* ``connection_changes`` -> ``connection_change`` with the state's string, only on a
  change (the vendor never reports the initial ``disconnected``);
* ``generation_ticks`` -> ``generation_tick`` with a ``GenerationTickMessage``;
* ``remote_tracks`` -> ``on_remote_stream(track)``, at once (the vendor calls it from
  the room's event, during ``connect()`` and again after each reconnect);
* ``session_started`` -> ``session_id`` and the vendor-style ``subscribe_token``;
* ``errors`` -> ``error`` with a ``WebRTCError`` whose ``cause`` is the typed error,
  for the errors the vendor reports: a server's ``error`` frame, a failed connect or
  reconnect attempt, a lost link that ends the session. A lost link that the session
  reconnects is not reported (the vendor only goes ``reconnecting``: user code that
  stops on an error would otherwise stop a session that recovers), nor are the errors
  the vendor only logs or raises to the caller (a malformed frame, an ack timeout, a
  raising subscriber). ``client.session.errors`` has them all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .... import protocol as p
from ....exceptions import (
    ConnectionLost,
    ConnectTimeout,
    RealtimeError,
    ServerError,
    SubscriberError,
)
from ....session import Session
from ....session_streams import SessionStreams
from ....states import ConnectionState, SessionInfo
from ..errors import WebRTCError
from ._tokens import encode_subscribe_token
from .messages import GenerationTickMessage

__all__ = ["BridgedClient", "Callbacks", "SessionBridge", "vendor_token"]

logger = logging.getLogger("rxrealtime.compat.decart")

S = ConnectionState
REPORTED = (ServerError, ConnectionLost, ConnectTimeout)
"""The kinds of error the vendor's ``error`` event carries (see the module docstring)."""


class Callbacks:
    """``on``/``off`` for ``events``, buffered until :meth:`flush`."""

    def __init__(self, events: tuple[str, ...], session: Session) -> None:
        self._callbacks: dict[str, list[Callable[[Any], None]]] = {e: [] for e in events}
        self._session = session
        self.buffering = True
        self._buffer: list[tuple[str, Any]] = []

    def on(self, event: str, callback: Callable[[Any], None]) -> None:
        if event in self._callbacks:  # the vendor ignores other names
            self._callbacks[event].append(callback)

    def off(self, event: str, callback: Callable[[Any], None]) -> None:
        callbacks = self._callbacks.get(event, [])
        if callback in callbacks:
            callbacks.remove(callback)

    def emit(self, event: str, value: Any) -> None:
        if self.buffering:
            self._buffer.append((event, value))
        else:
            self._dispatch(event, value)

    def flush(self) -> None:
        """Dispatch what was buffered on the next loop iteration, then stop buffering."""
        asyncio.get_running_loop().call_soon(self._flush_now)

    def stop(self) -> None:
        """Drop what is buffered and dispatch from now on (``disconnect()``)."""
        self.buffering = False
        self._buffer.clear()

    def _flush_now(self) -> None:
        self.buffering = False
        buffered, self._buffer = self._buffer, []
        for event, value in buffered:
            self._dispatch(event, value)

    def _dispatch(self, event: str, value: Any) -> None:
        for callback in list(self._callbacks[event]):
            try:
                callback(value)
            except Exception as exc:
                logger.exception("Error in %s callback: %s", event, exc)
                self._session.errors.emit(SubscriberError(f"decart:{event}", exc))


class SessionBridge:
    """The session's streams as the vendor's events; see the module docstring."""

    def __init__(
        self, session: Session, callbacks: Callbacks,
        on_remote_stream: Callable[[Any], None], *, ticks: bool = True,
        on_reconnected: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        self.session_id: str | None = None
        self.subscribe_token: str | None = None
        self.closing = False
        self.on_reconnected = on_reconnected
        """Called when a reconnect brought the session back (the passthrough hook)."""
        self._session, self._callbacks = session, callbacks
        self._state = S.DISCONNECTED
        self._held: RealtimeError | None = None
        session.errors.subscribe(self._on_error)
        session.connection_changes.subscribe(self._on_state)
        session.session_started.subscribe(self._on_started)
        session.remote_tracks.subscribe(on_remote_stream)
        if ticks:
            session.generation_ticks.subscribe(self._on_tick)

    def _on_state(self, state: ConnectionState) -> None:
        previous, self._state = self._state, state
        held, self._held = self._held, None
        if state is previous:
            return  # the replayed current state, or no change
        if held is not None and state is S.DISCONNECTED and not self.closing:
            self._report(held)  # the lost link ended the session: no reconnect follows
        self._callbacks.emit("connection_change", state.value)
        back = state in (S.CONNECTED, S.GENERATING) and previous is S.RECONNECTING
        if back and self.on_reconnected is not None:
            self.on_reconnected()

    def _on_error(self, error: RealtimeError) -> None:
        if self.closing or not isinstance(error, REPORTED):
            return
        if isinstance(error, ConnectionLost) and self._state in (S.CONNECTED, S.GENERATING):
            self._held = error  # reported only if the session does not reconnect
            return
        self._report(error)

    def _report(self, error: RealtimeError) -> None:
        self._callbacks.emit("error", WebRTCError(str(error), cause=error))

    def _on_tick(self, tick: p.GenerationTick) -> None:
        self._callbacks.emit("generation_tick", GenerationTickMessage(seconds=tick.seconds))

    def _on_started(self, info: SessionInfo) -> None:
        self.session_id = info.sid
        self.subscribe_token = vendor_token(info)


def vendor_token(info: SessionInfo) -> str:
    """The subscribe token as the vendor spells it (``json.dumps`` of the room name, with
    its spaces), so a token handed to the vendor's own SDK elsewhere is byte-identical."""
    try:
        target = p.parse_any_subscribe_token(info.subscribe_token)
    except RealtimeError:
        return info.subscribe_token
    if isinstance(target, p.RoomTarget):
        return encode_subscribe_token(target.room_name)
    return info.subscribe_token  # a direct-peer session: rxrealtime's own token


class BridgedClient:
    """What the vendor's realtime and subscribe clients share: the session, its streams,
    the state, ``on``/``off`` and ``disconnect``."""

    EVENTS: tuple[str, ...] = ("connection_change", "error")

    def __init__(
        self, session: Session, on_remote_stream: Callable[[Any], None], *, ticks: bool,
        on_reconnected: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        self._session = session
        self._callbacks = Callbacks(self.EVENTS, session)
        self._bridge = SessionBridge(session, self._callbacks, on_remote_stream, ticks=ticks,
                                     on_reconnected=on_reconnected)  # fmt: skip

    @property
    def session(self) -> Session:
        """The :class:`rxrealtime.Session` underneath: every stream, ``scheduler`` for
        time-based operators, and what ``rto.budget_guard``, ``rt.tapes.record`` and
        ``rt.Fleet`` take."""
        return self._session

    @property
    def streams(self) -> SessionStreams:
        """The same session seen as its streams only (``client.streams.generation_ticks``,
        ``.frames``, ``.errors``...): the place to start piping operators."""
        return self._session

    def is_connected(self) -> bool:
        """Whether the state is ``connected`` or ``generating``."""
        return self._session.state in (S.CONNECTED, S.GENERATING)

    def get_connection_state(self) -> str:
        """The state now, as its string (``connecting``, ..., ``disconnected``)."""
        return self._session.state.value

    def on(self, event: str, callback: Callable[..., None]) -> None:
        """Call ``callback`` for each ``event`` (other names are ignored, as the vendor's)."""
        self._callbacks.on(event, callback)

    def off(self, event: str, callback: Callable[..., None]) -> None:
        """Stop calling ``callback`` for ``event``."""
        self._callbacks.off(event, callback)

    async def disconnect(self) -> None:
        """Close for good: the room, the socket and every stream (safe to call twice)."""
        self._callbacks.stop()
        self._bridge.closing = True
        await self._session.disconnect()

    async def _start(self, steps: Callable[[], Awaitable[None]]) -> None:
        """Run the connect ``steps``; any failure closes the session and is raised as a
        :class:`WebRTCError` (the vendor wraps every connect failure so), the typed error
        as its ``cause``. On success, the buffered events go out on the next iteration."""
        try:
            await steps()
        except BaseException as exc:
            self._callbacks.stop()
            self._bridge.closing = True
            await self._session.disconnect()
            if isinstance(exc, Exception) and not isinstance(exc, WebRTCError):
                raise WebRTCError(str(exc), cause=exc) from exc
            raise
        self._callbacks.flush()
