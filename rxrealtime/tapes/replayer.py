"""A tape played back as a session's streams, on any scheduler.

:class:`Replay` is a :class:`~rxrealtime.session_streams.SessionStreams` like a live
:class:`~rxrealtime.Session`: the same stream attributes with the same replay rules,
plus ``url``, ``model``, ``state``, ``session_id``, ``scheduler`` and ``disconnect()``,
so operators, fleets and dashboards take it unchanged. Each recorded event is emitted
at its recorded offset (divided by ``speed``) on the scheduler: with reactivex's
``TestScheduler`` an hour of tape runs in milliseconds of virtual time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from pydantic import ValidationError
from reactivex import abc, typing
from reactivex.disposable import SerialDisposable
from reactivex.notification import OnCompleted, OnNext
from reactivex.scheduler import VirtualTimeScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.testing.recorded import Recorded

from .. import protocol as p
from ..exceptions import ConfigError
from ..models import ModelDefinition
from ..session_streams import SessionStreams
from ..states import ConnectionState, SessionInfo
from .format import Record, TapeError
from .reader import Tape, load

__all__ = ["Replay", "TapeTimeScheduler", "emissions", "recorded", "replay"]

_T = TypeVar("_T")

_SILENT = frozenset({"link", "end"})
_STREAM_OF = {"out": "sent", "state": "connection_changes", "error": "errors"}


def emissions(record: Record) -> Iterator[tuple[str, Any]]:
    """The ``(stream name, value)`` pairs a live session published for ``record``."""
    kind = record.kind
    if kind == "in":
        yield "messages", record.value
        if isinstance(record.value, p.GenerationTick):
            yield "generation_ticks", record.value
    elif kind == "refused":
        yield "messages", record.value
    elif kind not in _SILENT:
        yield _STREAM_OF.get(kind, kind), record.value


class TapeTimeScheduler(AsyncIOScheduler):
    """The running loop's scheduler in *tape time*: ``speed`` tape seconds pass per
    second, so time-based operators (``stall_detector``, rates, sampling) on a fast
    real-time replay measure what they would have measured live."""

    def __init__(self, loop: asyncio.AbstractEventLoop, speed: float = 1.0) -> None:
        super().__init__(loop)
        self.speed = speed
        self._event_loop = loop
        self._origin = loop.time()

    @property
    def now(self) -> datetime:
        """Tape time: the loop's clock, sped up ``speed`` times from the start."""
        elapsed = self._event_loop.time() - self._origin
        return self.to_datetime(self._origin + elapsed * self.speed)

    def schedule_relative(
        self, duetime: typing.RelativeTime, action: typing.ScheduledAction[_T],
        state: _T | None = None,
    ) -> abc.DisposableBase:  # fmt: skip
        """Run ``action`` after ``duetime`` seconds of tape time."""
        seconds = self.to_seconds(duetime) / self.speed
        handle: abc.DisposableBase = super().schedule_relative(seconds, action, state)
        return handle


def _tape(source: str | Path | Tape, strict: bool) -> Tape:
    return source if isinstance(source, Tape) else load(source, strict=strict)


class Replay(SessionStreams):
    """A recorded session played back; make one with :func:`replay`.

    ``disconnect()`` (what ``budget_guard`` calls) is recorded in
    :attr:`disconnect_requests`, at the tape offset it came, and ends the replay there
    as a disconnected session ends: state ``disconnected``, every stream completes.
    """

    def __init__(
        self,
        tape: Tape,
        *,
        scheduler: abc.SchedulerBase | None = None,
        speed: float = 1.0,
        start_at: float | None = None,
    ) -> None:
        if not speed > 0:
            raise ConfigError(f"speed must be > 0, got {speed!r}")
        super().__init__()
        self._rate = speed  # tape seconds per second of the scheduler
        if scheduler is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise ConfigError(
                    "a real-time replay needs a running asyncio loop; "
                    "pass scheduler= (e.g. a TestScheduler)"
                ) from None
            scheduler, self._rate = TapeTimeScheduler(loop, speed), 1.0
        try:
            self.model: ModelDefinition = tape.header.model.definition()
        except ValidationError as exc:
            raise TapeError(
                f"bad model in the header: {exc.errors()[0]['msg']}", path=tape.path, line=1
            ) from None
        self.tape = tape
        self.speed = speed
        self.disconnect_requests: list[float] = []
        """Tape offsets (s) at which ``disconnect()`` was called (e.g. by a budget guard)."""
        self._scheduler = scheduler
        self._base = scheduler.to_seconds(scheduler.now) if start_at is None else start_at
        self._next = 0
        self._pending = SerialDisposable()
        self._info: SessionInfo | None = None
        self._by_name = self.streams
        self._schedule()

    def __repr__(self) -> str:
        return f"<Replay {self.tape.path!r} model={self.model.name!r} state={self.state}>"

    # -- what a Session has ------------------------------------------------------------

    @property
    def url(self) -> str:
        """The recorded session's URL (credentials were redacted when recorded)."""
        return self.tape.header.url

    @property
    def tier(self) -> str:
        """The recorded session's speed tier, which fleets and dashboards price (not the
        replay's ``speed``, how fast it plays); ``standard`` for a format 1 tape, which
        did not record it."""
        return self.tape.header.tier or "standard"

    @property
    def state(self) -> ConnectionState:
        """The replayed connection state (``connection_changes``' current value)."""
        return self.connection_changes.value

    @property
    def session_id(self) -> str | None:
        """The id of the replayed server session, once one started (``None`` before)."""
        return self._info.sid if self._info else None

    @property
    def subscribe_token(self) -> str | None:
        """The recorded subscribe token of the current server session, if one started."""
        return self._info.subscribe_token if self._info else None

    @property
    def scheduler(self) -> abc.SchedulerBase:
        """The scheduler the replay runs on (pass it to time-based operators): the one
        given, or a :class:`TapeTimeScheduler` on the running loop."""
        return self._scheduler

    @property
    def closed(self) -> bool:
        """True once the tape ran out (or ``disconnect()`` ended it): streams completed."""
        return self.errors.completed

    @property
    def position_s(self) -> float:
        """How far into the tape the replay is, in tape seconds."""
        now = self._scheduler.to_seconds(self._scheduler.now)
        return max(0.0, (now - self._base) * self._rate)

    async def disconnect(self) -> None:
        """Record the request (see the class docstring); nothing is sent anywhere."""
        self.disconnect_requests.append(round(self.position_s, 6))
        if not self.closed:
            self._pending.dispose()
            self.connection_changes.emit(ConnectionState.DISCONNECTED)
            self.complete_streams()

    close = disconnect

    async def wait_closed(self) -> None:
        """Wait until the tape ran out (in real time: ``duration / speed`` seconds)."""
        if self.closed:
            return
        done = asyncio.get_running_loop().create_future()

        def on_completed() -> None:
            if not done.done():
                done.set_result(None)

        self.errors.subscribe(on_completed=on_completed)
        await done

    async def play(self) -> None:
        """Play to the end, letting the asyncio loop run between instants.

        On a virtual-time scheduler this advances it one recorded instant at a time, so
        what operators schedule on the loop (``budget_guard``'s ``disconnect()``) lands at
        the virtual time it was asked for, as it would live. On the asyncio scheduler it
        is :meth:`wait_closed`.
        """
        scheduler = self._scheduler
        if not isinstance(scheduler, VirtualTimeScheduler):
            await self.wait_closed()
            return
        while not self.closed and self._next < len(self.tape.records) + 1:
            scheduler.advance_to(self._due(self._next))
            for _ in range(3):
                await asyncio.sleep(0)

    # -- playback ----------------------------------------------------------------------

    def _due(self, index: int) -> float:
        records = self.tape.records
        t = records[index].t if index < len(records) else self.tape.duration_s
        return self._base + t / self._rate

    def _schedule(self) -> None:
        self._pending.disposable = self._scheduler.schedule_absolute(
            self._due(self._next), self._emit_instant
        )

    def _emit_instant(self, _: abc.SchedulerBase, __: Any = None) -> None:
        """Emit every record of the next instant, then schedule the one after."""
        records, streams = self.tape.records, self._by_name
        index = self._next
        if index < len(records):
            t = records[index].t
            while index < len(records) and records[index].t == t and not self.closed:
                record = records[index]
                index += 1
                if record.kind == "session_started":
                    self._info = record.value
                for name, value in emissions(record):
                    streams[name].emit(value)
        self._next = index
        if self.closed:
            return
        if index < len(records):
            self._schedule()
            return
        if self.tape.problem is not None:
            self.errors.emit(self.tape.problem)
        self.complete_streams()


def replay(
    source: str | Path | Tape,
    *,
    scheduler: abc.SchedulerBase | None = None,
    speed: float = 1.0,
    start_at: float | None = None,
    strict: bool = True,
) -> Replay:
    """Play a tape (a path or a loaded :class:`Tape`) back as a session's streams.

    Each event comes at its recorded offset divided by ``speed``, counted from
    ``start_at`` (the scheduler's time; default: now). Without ``scheduler`` it plays in
    real time (times ``speed``) on the running asyncio loop, on a
    :class:`TapeTimeScheduler` that keeps tape time. Subscribe before the scheduler runs to see
    everything. ``strict=False`` plays the valid part of a damaged tape and then
    reports the damage as a :class:`TapeError` on ``errors``.
    """
    return Replay(_tape(source, strict), scheduler=scheduler, speed=speed, start_at=start_at)


def recorded(
    source: str | Path | Tape,
    stream: str,
    *,
    start_at: float = 0.0,
    speed: float = 1.0,
    strict: bool = True,
) -> list[Recorded[Any]]:
    """What a subscriber of ``stream`` on a :func:`replay` sees, as the
    ``Recorded`` messages reactivex's ``TestScheduler`` observers collect::

        scheduler = TestScheduler()
        ticks = scheduler.create_observer()
        rt.tapes.replay(tape, scheduler=scheduler).generation_ticks.subscribe(ticks)
        scheduler.start()
        assert ticks.messages == rt.tapes.recorded(tape, "generation_ticks")

    The subscriber is the one that subscribed at ``start_at`` (a state stream gives it
    its current value then); times are in the scheduler's seconds. Ends with the
    ``on_completed`` at the end of the tape.
    """
    tape = _tape(source, strict)
    if stream not in SessionStreams().streams:
        raise ConfigError(f"no stream named {stream!r}")
    times = VirtualTimeScheduler

    def at(t: float) -> int:
        # reactivex annotates Recorded.time as int; TestScheduler's clock is a float
        return cast(int, times.to_seconds(times.to_datetime(start_at + t / speed)))

    out: list[Recorded[Any]] = []
    state: Any = ConnectionState.DISCONNECTED
    if stream == "connection_changes":
        out.append(Recorded(at(0.0), OnNext(state)))
    for record in tape.records:
        for name, value in emissions(record):
            if name != stream or (name == "connection_changes" and value == state):
                continue
            state = value if name == "connection_changes" else state
            out.append(Recorded(at(record.t), OnNext(value)))
    if stream == "errors" and tape.problem is not None:
        out.append(Recorded(at(tape.duration_s), OnNext(tape.problem)))
    out.append(Recorded(at(tape.duration_s), OnCompleted()))
    return out
