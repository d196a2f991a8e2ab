"""Codec threads yield to the event loop, so billing stays prompt when video cannot.

aiortc encodes on the loop's default executor threads (``asyncio_N``) and decodes on one
thread per receiver (``video-decoder``); on a machine they saturate, the loop thread waits
in the run queue behind them, and a ``generation_tick`` that arrived on time reaches its
subscribers hundreds of milliseconds late: the budget guard stops a session late exactly
when the machine is overloaded. Raising those threads' nice value (Linux applies
``setpriority`` to a thread id per thread; raising it needs no privilege) lets the
scheduler run the loop first: ticks stay prompt while video degrades, which a user
paying per second prefers.

One sweep per second per process, while any session wants it: threads appear lazily (an
executor grows under load), so a one-off pass would miss them. Only threads whose names
say they are codec threads are touched; the loop's own thread and the user's threads
are not. Where ``os.setpriority`` does not exist (not Unix) this does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading

__all__ = ["CodecThreads", "is_codec_thread"]

logger = logging.getLogger(__name__)

SWEEP_S = 1.0


def is_codec_thread(name: str) -> bool:
    """aiortc's encoder executor threads and its decoder threads, by the names it gives."""
    return name.startswith("asyncio_") or "decoder" in name


class CodecThreads:
    """The process's codec threads, lowered to ``nice`` while anyone holds a share."""

    _instance: CodecThreads | None = None

    def __init__(self, nice: int) -> None:
        self.nice = nice
        self.lowered: set[int] = set()
        self._holders = 0
        self._handle: asyncio.TimerHandle | None = None

    @classmethod
    def shared(cls) -> CodecThreads:
        """The one sweeper of this process."""
        if cls._instance is None:
            cls._instance = cls(nice=10)
        return cls._instance

    def hold(self, nice: int) -> None:
        """A session's link carries media: sweep now and every :data:`SWEEP_S`. Threads
        lowered from now on get ``nice`` (the latest session's setting)."""
        self.nice = nice
        self._holders += 1
        if self._handle is None:
            self._sweep()

    def release(self) -> None:
        """That link closed; the last release stops the sweeps (lowered threads stay)."""
        self._holders = max(0, self._holders - 1)
        if not self._holders and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def sweep(self) -> int:
        """Lower every codec thread not lowered yet; how many were lowered now."""
        setpriority = getattr(os, "setpriority", None)
        if setpriority is None:
            return 0
        done = 0
        alive = set()
        for thread in threading.enumerate():
            tid = thread.native_id
            if tid is None or thread is threading.main_thread():
                continue
            alive.add(tid)
            if tid in self.lowered or not is_codec_thread(thread.name):
                continue
            try:
                setpriority(os.PRIO_PROCESS, tid, self.nice)
            except OSError as exc:  # a thread that just ended, or a policy that forbids it
                logger.debug("cannot lower thread %s: %s", thread.name, exc)
                continue
            self.lowered.add(tid)
            done += 1
        self.lowered &= alive  # thread ids are reused: forget the ended ones
        return done

    def _sweep(self) -> None:
        self.sweep()
        if self._holders:
            loop = asyncio.get_running_loop()
            self._handle = loop.call_later(SWEEP_S, self._sweep)
        else:
            self._handle = None
