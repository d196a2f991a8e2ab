"""One scale level's client side, in a fresh process: K full Sessions, driven by JSON lines.

``python -m rxrealtime.cli._bench._scale_child '{"k": K, "width": W, "height": H, "fps": F}'``
imports the whole media stack, then reports the process's RSS before any session exists,
so ``(RSS after connecting - that) / K`` is what each session costs, measured in a process
that never freed memory of an earlier level to reuse.

Commands (one JSON array per line on stdin; one reply per line on stdout; stderr is left
to the logs):

* ``["connect", url, api_key]`` -> ``["connected", report]``: all K connect at once with
  the default ``connect_timeout_s``; a failed connect is a figure (its error type), not a
  crash;
* ``["mark"]`` -> ``["mark", snapshot]``: CPU, RSS, CPU per thread group
  (:func:`._scale_probe.snapshot`), and frames received so far;
* ``["profile", seconds]`` -> ``["profile", {"main": {"groups", "top"}, "from": snapshot, "to":
  snapshot}]``: cProfile of the main thread over ``seconds``;
* ``["arrivals"]`` -> ``["arrivals", [[session_id, seconds, arrived_ns], ...]]``: every
  tick received (``time.monotonic_ns``, the bench server's clock too);
* ``["stop"]``: disconnects every session and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from ._common import child_stdin, reply
from ._scale_probe import MainProfile, rss_bytes, snapshot

__all__ = ["main"]


def _import_media_stack() -> None:
    """Load everything a connect loads, so the RSS baseline holds the libraries."""
    import aiortc  # noqa: F401
    import av  # noqa: F401
    import numpy  # noqa: F401

    from ... import media, session  # noqa: F401
    from ...transports import aiortc as transport_aiortc  # noqa: F401


class Level:
    """K sessions of one size, their tick arrivals and the frames they received."""

    def __init__(
        self, k: int, width: int, height: int, fps: float, video_backoff: bool = True
    ) -> None:
        self.k, self.size, self.video_backoff = k, (width, height, fps), video_backoff
        self.frames = 0
        self.arrivals: list[tuple[str, int, int]] = []
        self.errors: list[str] = []
        self.sessions: list[Any] = []

    async def connect(self, url: str, api_key: str) -> dict[str, Any]:
        from ...media import SyntheticTrack
        from ...models import DEFAULT_MODEL
        from ...protocol import GenerationTick
        from ...session import Session

        clock = time.monotonic_ns
        arrivals, errors = self.arrivals, self.errors

        def count(_: object) -> None:
            self.frames += 1

        for _ in range(self.k):
            session = Session(
                url, api_key=api_key, model=DEFAULT_MODEL, video_backoff=self.video_backoff
            )

            def on_tick(tick: GenerationTick, session: Session = session) -> None:
                arrivals.append((session.session_id or "", tick.seconds, clock()))

            session.generation_ticks.subscribe(on_tick)
            session.frames.subscribe(count)
            session.errors.subscribe(lambda e: errors.append(f"{type(e).__name__}: {e}"))
            self.sessions.append(session)
        width, height, fps = self.size

        async def one(session: Session) -> float:
            started = time.perf_counter()
            await session.connect(local_track=SyntheticTrack(width, height, fps))
            return time.perf_counter() - started

        started = time.perf_counter()
        outcomes = await asyncio.gather(*(one(s) for s in self.sessions), return_exceptions=True)
        took = [o for o in outcomes if isinstance(o, float)]
        failed = [type(o).__name__ for o in outcomes if isinstance(o, BaseException)]
        return {
            "connect_s": time.perf_counter() - started,
            "connect_each_s": took,
            "connected": len(took),
            "failed": {name: failed.count(name) for name in sorted(set(failed))},
            "timeout_s": self.sessions[0].options.connect_timeout_s if self.sessions else 0,
        }

    async def stop(self) -> None:
        await asyncio.gather(*(s.disconnect() for s in self.sessions), return_exceptions=True)


async def main(args: dict[str, Any]) -> None:
    _import_media_stack()
    stdin = await child_stdin(limit=16 * 1024 * 1024)

    level = Level(
        args["k"], args["width"], args["height"], args["fps"], args.get("video_backoff", True)
    )
    reply("ready", rss_bytes())
    try:
        while line := await stdin.readline():
            command, *rest = json.loads(line)
            if command == "stop":
                break
            if command == "connect":
                reply("connected", await level.connect(*rest))
            elif command == "mark":
                errors = {"errors": level.errors[:10], "error_count": len(level.errors)}
                reply("mark", {**snapshot(), "frames": level.frames, **errors})
            elif command == "profile":
                before, profile = snapshot(), MainProfile()
                profile.start()
                await asyncio.sleep(rest[0])
                main_thread = profile.stop()
                reply("profile", {"main": main_thread, "from": before, "to": snapshot()})
            elif command == "arrivals":
                reply("arrivals", level.arrivals)
    finally:
        await level.stop()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
