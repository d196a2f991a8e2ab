"""Recording a session's streams to a tape, off the hot path.

The hot path is ``session.messages``: every server frame, ticks above all. Its recorder
subscriber is ``list.append`` itself (no Python frame per tick); the time is taken once
per turn of the event loop, by a stamp subscriber that notes the time of the first
frame of the turn, unsubscribes and comes back on the next turn (``call_soon``), so
frames delivered together share the time the first of them arrived. Every other stream
is rare and appends ``(clock time, kind, value)`` itself.

Nothing is encoded, redacted or written while a frame is being delivered: a flush task
does that every ``flush_interval_s`` (preferring a quiet moment between bursts; at
once when ``max_buffered`` records wait), in steps of whole lines, then flushes the
file, so a killed process leaves a tape that reads back up to its last flush.
``close()`` flushes the rest and ends the tape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable

from .. import protocol as p
from ..billing import tier_of
from ..exceptions import ConfigError, ConnectionLost, ProtocolError, RealtimeError, SecretScope
from ..models import ModelDefinition
from ..session_streams import SessionStreams
from ..states import ConnectionState
from .format import (
    LinkRecord,
    ModelInfo,
    TapeHeader,
    encode_frames,
    encode_header,
    encode_records,
    open_for_writing,
)

__all__ = ["TapeRecorder", "record"]

logger = logging.getLogger(__name__)

_UP = (ConnectionState.CONNECTED, ConnectionState.GENERATING)

#: Streams recorded as they are (the kind is the stream's name).
_PLAIN_STREAMS = (
    "session_started", "prompt_acks", "image_acks", "generation_started", "generation_ended",
    "queue_positions", "ack_latencies", "diagnostics",
)  # fmt: skip

FLUSH_STEP = 4096
"""Records encoded and written between two yields to the event loop."""

QUIET_S = 0.01
"""No frame for this long (seconds) is a quiet moment, when the flush task prefers to run."""

_MARK = "mark"
"""The kind of a buffered time stamp: the frames after it arrived at its time."""


class TapeRecorder:
    """Records one session (anything with the streams of
    :class:`~rxrealtime.session_streams.SessionStreams`, a ``url`` and a ``model``) to
    ``path``; see the module docstring.

    Start it before ``connect()`` so the tape sees everything. ``video`` names a video
    file recorded beside the tape. ``stats=True`` also records ``stats`` and ``quality``
    (off by default: a session samples them only while someone subscribes, so recording
    them would make it sample every ``stats_interval_s``). The recorder stops by itself
    once the session is closed for good; ``close()`` (or leaving ``async with``) stops it
    earlier.
    """

    def __init__(
        self,
        session: SessionStreams,
        path: str | Path,
        *,
        flush_interval_s: float = 0.5,
        max_buffered: int = 100_000,
        video: str | None = None,
        stats: bool = False,
    ) -> None:
        if not flush_interval_s > 0:
            raise ConfigError(f"flush_interval_s must be > 0, got {flush_interval_s!r}")
        if max_buffered < 1:
            raise ConfigError(f"max_buffered must be at least 1, got {max_buffered!r}")
        self.session = session
        self.path = Path(path)
        self.flush_interval_s = flush_interval_s
        self.max_buffered = max_buffered
        self.video = video
        self.stats = stats
        self.records_written = 0
        """Records written to the file so far (each flush writes whole lines)."""
        self.error: Exception | None = None
        """Why the recording stopped early (the file could not be written), if it did."""
        self._buffer: list[Any] = []
        """Frames of ``messages`` as they are, and ``(clock time, kind, value)`` tuples."""
        self._timed: list[int] = []
        """Where in the buffer the tuples are (all else is frames)."""
        self._file: IO[bytes] | None = None
        self._origin = 0.0
        self._last_t = 0.0
        self._last_stamp = 0.0
        self._subscriptions = CompositeDisposable()
        self._stamp = SerialDisposable()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._closing: asyncio.Task[None] | None = None
        self._state = ConnectionState.DISCONNECTED
        self._secrets = SecretScope()
        """A share of the session's secrets: the last flush may come after the session
        closed and released its own, and must still redact them."""

    def __repr__(self) -> str:
        return f"<TapeRecorder {str(self.path)!r} written={self.records_written}>"

    @property
    def recording(self) -> bool:
        """True from ``start()`` until the tape is closed (or a write failed)."""
        return self._file is not None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> TapeRecorder:
        """Open the file, write the header and subscribe (in a running asyncio loop).

        Raises ``OSError`` if the file cannot be created.
        """
        if self._file is not None or self._closing is not None:
            raise ConfigError("a tape recorder records once; make a new one")
        self._loop = asyncio.get_running_loop()
        model: ModelDefinition | None = getattr(self.session, "model", None)
        info = ModelInfo(name="unknown")
        if model is not None:
            info = ModelInfo(name=model.name, url_path=model.url_path, fps=model.fps,
                             width=model.width, height=model.height)  # fmt: skip
        header = TapeHeader(
            model=info,
            url=str(getattr(self.session, "url", "")),
            started_at=datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            video=self.video,
            tier=tier_of(self.session),
        )
        self._file = open_for_writing(self.path)
        self._file.write(encode_header(header))
        self._file.flush()
        self._origin = time.monotonic()
        self._wake = asyncio.Event()
        scope = getattr(self.session, "secret_scope", None)
        self._secrets = scope.share() if isinstance(scope, SecretScope) else SecretScope()
        self._subscribe()
        self._task = asyncio.ensure_future(self._run())
        return self

    async def close(self) -> None:
        """Stop recording: unsubscribe, flush what waits, write the end record, close.

        Safe to call many times; every call returns once the tape is closed.
        """
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        self._subscriptions.dispose()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._file is None:
            return
        self._add("end", {"records": self.records_written + self._pending() + 1})
        self.flush()
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()
        self._secrets.release()

    def _pending(self) -> int:
        return sum(1 for entry in self._buffer if entry.__class__ is not tuple) + sum(
            1 for i in self._timed if self._buffer[i][1] != _MARK
        )

    async def __aenter__(self) -> TapeRecorder:
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- the hot side: append only ----------------------------------------------------

    def _subscribe(self) -> None:
        s, add = self.session, self._subscriptions.add
        add(s.messages.subscribe(self._buffer.append))  # the hot path: C, nothing else
        add(self._stamp)
        self._arm_stamp()
        add(s.sent.subscribe(lambda f: self._add("out", f)))
        add(s.connection_changes.subscribe(self._on_state))
        for name in (*_PLAIN_STREAMS, *(("stats", "quality") if self.stats else ())):
            add(s.streams[name].subscribe(self._adder(name)))
        add(s.errors.subscribe(self._on_error, on_completed=self._on_closed))

    def _arm_stamp(self) -> None:
        """Time the next frame (subscribed after ``append``, so the frame is in the buffer)."""
        if self._file is not None and not self._subscriptions.is_disposed:
            self._stamp.disposable = self.session.messages.subscribe(self._on_first_frame)

    def _on_first_frame(self, _: p.ServerMessage) -> None:
        """The first frame of this turn of the loop: stamp it, sleep until the next turn."""
        buffer, timed = self._buffer, self._timed
        entry = (time.monotonic(), _MARK, None)
        self._last_stamp = entry[0]
        if timed and timed[-1] >= len(buffer) - 1:
            timed.append(len(buffer))  # something was recorded since: stamp after it
            buffer.append(entry)
        else:
            timed.append(len(buffer) - 1)  # before the frame just appended
            buffer.insert(-1, entry)
        self._stamp.disposable = Disposable()
        assert self._loop is not None
        self._loop.call_soon(self._arm_stamp)
        if len(buffer) >= self.max_buffered and self._wake is not None:
            self._wake.set()

    def _adder(self, kind: str) -> Callable[[Any], None]:
        return lambda value: self._add(kind, value)

    def _add(self, kind: str, value: Any) -> None:
        self._timed.append(len(self._buffer))
        self._buffer.append((time.monotonic(), kind, value))
        if len(self._buffer) >= self.max_buffered and self._wake is not None:
            self._wake.set()

    def _on_state(self, state: ConnectionState) -> None:
        previous, self._state = self._state, state
        self._add("state", str(state))
        if state in _UP and previous not in _UP:
            self._add("link", LinkRecord(up=True))
        elif previous in _UP and state not in _UP:
            # The error that took the link down is published just before the state
            # changes, in the same step of the session core; none: a disconnect().
            last = self._buffer[-2] if len(self._buffer) >= 2 else None
            loss = last[2] if last.__class__ is tuple and last[1] == "error" else None  # type: ignore[index]
            code = loss.code if isinstance(loss, ConnectionLost) else None
            error = type(loss).__name__ if loss is not None else None
            self._add("link", LinkRecord(up=False, code=code, error=error))

    def _on_error(self, error: RealtimeError) -> None:
        buffer = self._buffer
        if isinstance(error, ProtocolError) and buffer:
            # A tick the client refused is reported right after it was published on
            # messages, with the tick as the error's frame: mark it as not delivered.
            frame = buffer[-1]
            if isinstance(frame, p.GenerationTick) and error.frame == p.encode(frame).decode():
                buffer[-1] = (time.monotonic(), "refused", frame)
                self._timed.append(len(buffer) - 1)
        self._add("error", error)

    def _on_closed(self) -> None:
        """The session is closed for good (``errors`` completes last): finish the tape."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())

    # -- the flush side ------------------------------------------------------------------

    def flush(self) -> int:
        """Encode and write what waits, as whole lines, now; returns how many records."""
        batch, timed = self._take()
        count = self._write(batch, timed, 0, len(batch))
        return count if self._flush_file() else 0

    def _take(self) -> tuple[list[Any], list[int]]:
        """What waits, leaving the buffer empty for the frames to come."""
        batch, timed = self._buffer.copy(), self._timed.copy()
        self._buffer.clear()
        self._timed.clear()
        return batch, timed

    def _write(self, batch: list[Any], timed: list[int], start: int, end: int) -> int:
        """Write ``batch[start:end]`` (its time stamps are the ``timed`` in that range)."""
        file = self._file
        if file is None or start >= end:
            return 0
        try:
            data, count = self._encode(batch[start:end],
                                       [i - start for i in timed if start <= i < end])  # fmt: skip
            file.write(data)
        except (OSError, ValueError) as exc:  # ValueError: written after an outside close
            self._fail(exc)
            return 0
        self.records_written += count
        return count

    def _flush_file(self) -> bool:
        file = self._file
        try:
            if file is not None:
                file.flush()
        except (OSError, ValueError) as exc:
            self._fail(exc)
        return self._file is not None

    async def _flush_in_steps(self) -> None:
        """:meth:`flush`, :data:`FLUSH_STEP` records at a time, letting the loop run in
        between (a large batch never holds the loop for long); what it took is written
        even if it is cancelled."""
        batch, timed = self._take()
        done = 0
        try:
            while done < len(batch):
                self._write(batch, timed, done, done + FLUSH_STEP)
                done += FLUSH_STEP
                if done < len(batch):
                    await asyncio.sleep(0)
        finally:
            self._write(batch, timed, done, len(batch))
            self._flush_file()

    def _encode(self, batch: list[Any], timed: list[int]) -> tuple[bytes, int]:
        """The batch as lines: each run of frames at the time of the stamp before it."""
        chunks: list[bytes] = []
        records: list[tuple[float, str, Any]] = []
        origin, t, start, count = self._origin, self._last_t, 0, 0
        for index in [*timed, len(batch)]:
            if index > start:
                if records:
                    chunks.append(encode_records(records))
                    count, records = count + len(records), []
                chunks.append(encode_frames(batch[start:index], t))
                count += index - start
            if index < len(batch):
                clock, kind, value = batch[index]
                t = max(t, round(clock - origin, 6))
                if kind != _MARK:
                    records.append((t, kind, value))
            start = index + 1
        if records:
            chunks.append(encode_records(records))
            count += len(records)
        self._last_t = t
        return b"".join(chunks), count

    def _fail(self, exc: Exception) -> None:
        logger.error("recording the tape %s failed, recording stopped: %s", self.path, exc)
        self.error = exc
        self._subscriptions.dispose()
        self._buffer.clear()
        self._timed.clear()
        self._secrets.release()
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(Exception):
                file.close()

    async def _run(self) -> None:
        """Flush every ``flush_interval_s``; while frames pour in, wait for a quiet moment
        (up to 4 intervals, or until ``max_buffered`` records wait): encoding competes
        with nothing then."""
        wake, interval = self._wake, self.flush_interval_s
        assert wake is not None
        while self._file is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), interval)
            wake.clear()
            latest = time.monotonic() + 3 * interval
            while (
                time.monotonic() - self._last_stamp < QUIET_S
                and len(self._buffer) < self.max_buffered
                and time.monotonic() < latest
            ):
                await asyncio.sleep(QUIET_S)
            await self._flush_in_steps()


@contextlib.asynccontextmanager
async def record(
    session: SessionStreams,
    path: str | Path,
    *,
    flush_interval_s: float = 0.5,
    max_buffered: int = 100_000,
    video: str | None = None,
    stats: bool = False,
) -> AsyncIterator[TapeRecorder]:
    """Record ``session`` to the tape ``path`` for the duration of the block::

        async with rt.tapes.record(session, "run.tape.jsonl"):
            async with session.connect(prompt="anime"):
                ...

    A name ending in ``.gz`` is gzip-compressed. See :class:`TapeRecorder`.
    """
    recorder = TapeRecorder(
        session, path, flush_interval_s=flush_interval_s, max_buffered=max_buffered,
        video=video, stats=stats,
    ).start()  # fmt: skip
    try:
        yield recorder
    finally:
        await recorder.close()
