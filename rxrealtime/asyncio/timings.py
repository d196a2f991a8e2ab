"""Measuring a session as it runs: connect phases per link, and stalled video.

Both feed ``session.diagnostics``. They sit in the shell because they read the clock;
what they publish is plain data (:mod:`rxrealtime.diagnostics`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from reactivex.disposable import CompositeDisposable

from ..diagnostics import PhaseTiming, VideoStall
from ..session_streams import SessionStreams
from ..states import ConnectionState

__all__ = ["PhaseClock", "StallWatch"]


class PhaseClock:
    """Times the phases of one connection attempt, from the moment it starts.

    ``websocket`` and ``media`` are marked by the shell; ``first_frame`` and
    ``first_tick`` by the first value of those streams after the attempt began.
    """

    def __init__(self, streams: SessionStreams, attempt: int) -> None:
        self._streams, self._attempt = streams, attempt
        self._start = time.monotonic()
        self._subscriptions = CompositeDisposable()
        for phase, stream in (("first_frame", streams.frames),
                              ("first_tick", streams.generation_ticks)):  # fmt: skip
            self._once(phase, stream)

    def _once(self, phase: str, stream: Any) -> None:
        holder: list[Any] = []

        def first(_: object) -> None:
            if holder:
                holder.pop().dispose()
                self.mark(phase)

        holder.append(stream.subscribe(first))
        self._subscriptions.add(holder[0])

    def mark(self, phase: str) -> None:
        seconds = round(time.monotonic() - self._start, 4)
        self._streams.diagnostics.emit(PhaseTiming(phase, seconds, self._attempt))

    def dispose(self) -> None:
        self._subscriptions.dispose()


class StallWatch:
    """Publishes :class:`VideoStall` when generated frames stop while generating.

    Checks every ``threshold_s / 2``: a stall is reported once when it reaches
    ``threshold_s`` (``ongoing``) and once more when frames resume, with its length.
    """

    def __init__(self, streams: SessionStreams, threshold_s: float) -> None:
        self._streams, self._threshold = streams, threshold_s
        self._last = time.monotonic()
        self._stalled_since: float | None = None
        self._count, self._total = 0, 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._subscription = streams.frames.subscribe(self._on_frame)

    def start(self) -> None:
        if self._handle is None:
            self._last = time.monotonic()
            self._schedule()

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        self._handle = loop.call_later(self._threshold / 2, self._check)

    def _on_frame(self, _: object) -> None:
        now = time.monotonic()
        if self._stalled_since is not None:
            total = round(now - self._stalled_since, 3)
            self._stalled_since = None
            self._total += total
            self._streams.diagnostics.emit(VideoStall(total, ongoing=False))
        self._last = now

    def _check(self) -> None:
        now = time.monotonic()
        generating = self._streams.connection_changes.value is ConnectionState.GENERATING
        if not generating:
            self._last = now  # only silence while generating (and billed) is a stall
        elif self._stalled_since is None and now - self._last >= self._threshold:
            self._stalled_since = self._last
            self._count += 1
            self._streams.diagnostics.emit(VideoStall(round(now - self._last, 3)))
        self._schedule()

    @property
    def freezes(self) -> tuple[int, float, bool]:
        """Stalls so far, their seconds (an ongoing one up to now), and whether one is on."""
        ongoing = self._stalled_since is not None
        extra = time.monotonic() - self._stalled_since if self._stalled_since is not None else 0
        return self._count, self._total + extra, ongoing

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._subscription.dispose()
