"""The nats suite's load generator, in a process of its own: N ticks-only sessions
published through the real :class:`~rxrealtime.nats.Publisher`.

``python -m rxrealtime.cli._bench._nats_load '{"url": URLS, "n": N, "prefix": P}'``
builds N sources that have a session's streams and nothing else (no socket, no media:
the point is the event path), gives each a server session id and the ``generating``
state, publishes them with one Publisher (the stream gets the cluster's replica count),
waits until JetStream has acknowledged those first events and replies
``["ready", {"rss_base", "rss"}]`` (RSS before and after the sources and the publisher).
It runs apart from the aggregator so that each side's CPU and memory are its own.

Commands (one JSON array per line on stdin, one reply per line on stdout):

* ``["run", seconds, "paced"]``: every session ticks once a second (the service's rate),
  the N sessions spread evenly over the second, for ``seconds``; then the buffer is
  flushed. ``["run", seconds, "flood"]``: ticks as fast as the publisher takes them
  (never more than :data:`AHEAD` buffered), round robin over the sessions. Replies
  ``["ran", report]``: ticks emitted, wall and CPU seconds of the ticking and of the
  whole (with the flush), how far the ticker fell behind its schedule, the most events
  buffered, RSS, and the publisher's published/dropped counts;
* ``["stop"]``: closes the publisher and exits.

Every tick bills exactly one second (each session's ticks count 1, 2, 3, ...), so the
aggregator's total tells the parent when the last one has arrived.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

from ... import protocol as p
from ...exceptions import RealtimeError
from ...models import DEFAULT_MODEL
from ...states import ConnectionState, SessionInfo
from ...streams import HotStream
from ._common import child_stdin, reply
from ._scale_probe import rss_bytes

__all__ = ["AHEAD", "TickSource", "main"]

AHEAD = 4096
"""Flood mode: events the ticker lets wait in the publisher's buffer at most."""
STEP_S = 0.005
"""Paced mode: the ticker wakes this often and emits every tick that is due."""


class TickSource:
    """What a publisher reads of a session (:class:`~rxrealtime.nats.PublishSource`),
    fed by the load generator: the streams, a model name, no connection."""

    model = DEFAULT_MODEL
    session_id: str | None = None

    def __init__(self) -> None:
        self.session_started: HotStream[SessionInfo] = HotStream("load.session_started")
        self.generation_ticks: HotStream[p.GenerationTick] = HotStream("load.generation_ticks")
        self.generation_ended: HotStream[p.GenerationEnded] = HotStream("load.generation_ended")
        self.connection_changes: HotStream[ConnectionState] = HotStream("load.connection_changes")
        self.errors: HotStream[RealtimeError] = HotStream("load.errors")


class Load:
    """N sources, their tick counts and the publisher they go through."""

    def __init__(self, n: int) -> None:
        self.sources = [TickSource() for _ in range(n)]
        self.counts = [0] * n
        self.publisher: Any = None
        self.nc: Any = None

    async def start(self, url: str, prefix: str, worker: str) -> None:
        import rxrealtime.nats as rtn

        self.nc = nc = await rtn.connect(url, name=f"bench-load-{worker}")
        self.publisher = await rtn.publish(self.sources, nc, subject_prefix=prefix, worker=worker)
        for i, source in enumerate(self.sources):
            source.session_started.emit(SessionInfo(sid=f"{worker}-{i}", ip="127.0.0.1", port=1))
            source.connection_changes.emit(ConnectionState.GENERATING)
        if not await self.publisher.flush(120):
            raise RuntimeError("JetStream did not acknowledge the sessions' first events")

    def tick(self, index: int) -> None:
        i = index % len(self.sources)
        self.counts[i] += 1
        self.sources[i].generation_ticks.emit(p.GenerationTick(seconds=self.counts[i]))

    async def run(self, seconds: float, mode: str) -> dict[str, Any]:
        publisher, n = self.publisher, len(self.sources)
        published, dropped = publisher.published, publisher.dropped
        cpu0, start = time.process_time(), time.perf_counter()
        sent = most_buffered = 0
        behind = 0.0
        while (elapsed := time.perf_counter() - start) < seconds:
            if mode == "flood":
                while publisher.buffered < AHEAD:
                    self.tick(sent)
                    sent += 1
                await asyncio.sleep(0.0005)  # let the publisher send (no busy wait)
            else:
                due = int(elapsed * n)  # n ticks a second in all: one per session
                if sent < due:
                    behind = max(behind, elapsed - sent / n)
                while sent < due:
                    self.tick(sent)
                    sent += 1
                await asyncio.sleep(STEP_S)
            most_buffered = max(most_buffered, publisher.buffered)
        ticking_wall, ticking_cpu = time.perf_counter() - start, time.process_time() - cpu0
        flushed = await publisher.flush(120)
        return {
            "ticks": sent,
            "wall_s": ticking_wall,
            "cpu_s": ticking_cpu,
            "total_wall_s": time.perf_counter() - start,
            "total_cpu_s": time.process_time() - cpu0,
            "behind_s": behind,
            "max_buffered": most_buffered,
            "flushed": flushed,
            "published": publisher.published - published,
            "dropped": publisher.dropped - dropped,
            "rss": rss_bytes(),
            "max_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }


async def main(args: dict[str, Any]) -> None:
    import rxrealtime.nats  # noqa: F401  (imported before the baseline RSS)

    stdin = await child_stdin()

    base = rss_bytes()
    load = Load(args["n"])
    await load.start(args["url"], args["prefix"], args.get("worker", "load"))
    reply("ready", {"rss_base": base, "rss": rss_bytes()})
    try:
        while line := await stdin.readline():
            command, *rest = json.loads(line)
            if command == "stop":
                break
            if command == "run":
                reply("ran", await load.run(*rest))
    finally:
        await load.publisher.close()
        await load.nc.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
