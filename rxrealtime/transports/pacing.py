"""Frames give way to billing: when the event loop lags, fewer frames are encoded.

On a saturated client the loop thread shares the interpreter with aiortc's encoder
threads, one encode in flight per sending session: with a hundred sessions the encoders
never rest, they take the GIL between their C calls, and a ``generation_tick`` that
arrived on time waits hundreds of milliseconds for the loop to reach it. Lowering the
codec threads' OS priority does not help (measured: tick p99 590 ms either way), the GIL
is not scheduled by the OS. What helps is less codec work exactly when the loop is late:
:class:`LoopLag` measures how late the loop runs a timer, and a :class:`FramePacer` per
sending track lets a frame through only as often as that lag allows: every frame while
the loop keeps time, then one in 2, 4, ... (at most one in :data:`MAX_SKIP` + 1) while
it lags, backing off again as it recovers. Video degrades; billing stays prompt.
"""

from __future__ import annotations

import asyncio

__all__ = ["MAX_SKIP", "FramePacer", "LoopLag"]

PROBE_S = 0.05
"""How often the loop's lag is probed."""
HIGH_LAG_S = 0.04
"""Above this the pacers send fewer frames."""
LOW_LAG_S = 0.015
"""Below this they send more again."""
EASE_S = 0.5
"""Once the loop keeps time again, one frame fewer is dropped every this long."""
MAX_SKIP = 15
"""At worst one frame in 16 is sent (about one a second at 15 fps): video never stops."""


class LoopLag:
    """How late one event loop runs a timer: the measure of its backlog.

    One per loop, running while any pacer holds it; ``lag_s`` is the latest probe's
    delay beyond its due time, smoothed a little (half the new value, half the old)."""

    _by_loop: dict[asyncio.AbstractEventLoop, LoopLag] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lag_s = 0.0
        self._holders = 0
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    @classmethod
    def of_running_loop(cls) -> LoopLag:
        loop = asyncio.get_running_loop()
        lag = cls._by_loop.get(loop)
        if lag is None:
            lag = cls._by_loop[loop] = cls(loop)
        return lag

    def hold(self) -> None:
        self._holders += 1
        if self._handle is None:
            self._schedule()

    def release(self) -> None:
        self._holders = max(0, self._holders - 1)
        if not self._holders:
            if self._handle is not None:
                self._handle.cancel()
                self._handle = None
            self._by_loop.pop(self.loop, None)

    def _schedule(self) -> None:
        self._due = self.loop.time() + PROBE_S
        self._handle = self.loop.call_at(self._due, self._probe)

    def _probe(self) -> None:
        late = max(0.0, self.loop.time() - self._due)
        self.lag_s = (self.lag_s + late) / 2
        if self._holders:
            self._schedule()
        else:
            self._handle = None


class FramePacer:
    """Whether to send the next frame of one track, from its loop's lag (pure rule;
    :meth:`admit` is called once per frame the track produces)."""

    def __init__(self, lag: LoopLag) -> None:
        self.lag = lag
        self.skip = 0
        """Frames to drop after each one sent (0 while the loop keeps time)."""
        self.dropped = 0
        self._left = 0
        self._eased = 0.0

    def admit(self) -> bool:
        lag, now = self.lag.lag_s, self.lag.loop.time()
        if lag > HIGH_LAG_S:
            self.skip = min(MAX_SKIP, self.skip * 2 + 1)
            self._eased = now
        elif lag < LOW_LAG_S and self.skip and now - self._eased >= EASE_S:
            self.skip -= 1  # back off slowly: a burst of frames would bring the lag back
            self._eased = now
        if self._left > 0:
            self._left -= 1
            self.dropped += 1
            return False
        self._left = self.skip
        return True
