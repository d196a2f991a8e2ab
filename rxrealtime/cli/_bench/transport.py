"""transport: the same sessions over the direct aiortc peer and over a LiveKit room.

For each transport and K in (1, 10): K full :class:`~rxrealtime.Session` objects send a
default :class:`~rxrealtime.media.SyntheticTrack` (320x180 at 15 fps) to one embedded
server in a child process (``media="aiortc"`` or ``media="livekit"``; in LiveKit mode it
starts a loopback livekit-server, built by ``make livekit``), with a 0.2 s billing
clock. After the sessions settle, ``windows`` windows are measured: generated frames
delivered to ``session.frames`` per second per session, this process's CPU per session,
and tick latency (the server's send stamp to the subscriber, same clock). Both
transports run in the same run, one after the other, so the figures compare.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from ...media import SyntheticTrack
from ...protocol import GenerationTick
from ...session import Session
from ._common import Config, SuiteResult, percentile, summary
from ._server import ServerProcess, bench_transports

__all__ = ["run"]

TICK_INTERVAL_S = 0.2
SETTLE_S = 2.0


async def _level(
    srv: ServerProcess, transport: str, k: int, windows: int, window_s: float
) -> dict[str, Any]:
    clock = time.monotonic_ns
    sessions = [
        Session(srv.url, api_key=srv.api_key, transport=transport, stats_interval_s=None)
        for _ in range(k)
    ]
    frames = [0] * k
    arrivals: list[dict[int, int]] = [{} for _ in range(k)]
    for i, session in enumerate(sessions):

        def on_frame(_: object, i: int = i) -> None:
            frames[i] += 1

        def on_tick(tick: GenerationTick, seen: dict[int, int] = arrivals[i]) -> None:
            seen[tick.seconds] = clock()

        session.frames.subscribe(on_frame)
        session.generation_ticks.subscribe(on_tick)
    started = time.perf_counter()
    try:
        await asyncio.gather(*(s.connect(local_track=SyntheticTrack()) for s in sessions))
        connect_s = time.perf_counter() - started
        await asyncio.sleep(SETTLE_S)
        await srv.call("tick_log")
        fps: list[float] = []
        cpu: list[float] = []
        sent: list[Any] = []
        for _ in range(windows):
            f0, t0, c0 = sum(frames), time.monotonic(), time.process_time()
            await asyncio.sleep(window_s)
            f1, t1, c1 = sum(frames), time.monotonic(), time.process_time()
            fps.append((f1 - f0) / (t1 - t0) / k)
            cpu.append((c1 - c0) * 1000 / (t1 - t0) / k)
            _, entries, _ = await srv.call("tick_log")
            sent.extend(entries)
        await asyncio.sleep(1.0)
        by_sid = {s.session_id: seen for s, seen in zip(sessions, arrivals, strict=True)}
        latencies = [
            (by_sid[sid][seconds] - sent_ns) / 1e6
            for sid, seconds, sent_ns in sent
            if seconds in by_sid.get(sid, {})
        ]
    finally:
        await asyncio.gather(*(s.disconnect() for s in sessions), return_exceptions=True)
    return {
        "transport": transport,
        "k": k,
        "connect_s": round(connect_s, 2),
        "fps_per_session": summary(fps),
        "cpu_ms_per_s_per_session": summary(cpu),
        "tick_p50_ms": percentile(latencies, 50),
        "tick_p99_ms": percentile(latencies, 99),
        "ticks_sent": len(sent),
        "ticks_seen": len(latencies),
    }


async def _run(config: Config, result: SuiteResult, transports: list[str]) -> None:
    windows = config.reps(full=3, quick=1)
    window_s = 1.5 if config.quick else 4.0
    levels = (1,) if config.quick else (1, 10)
    out = []
    for transport in transports:
        media = "livekit" if transport == "livekit" else "aiortc"
        async with ServerProcess(tick_interval_s=TICK_INTERVAL_S, media=media) as srv:
            for k in levels:
                level = await _level(srv, transport, k, windows, window_s)
                print(f"bench transport: {transport} K={k}: {level['fps_per_session']['median']}"
                      " fps/session", file=sys.stderr, flush=True)  # fmt: skip
                out.append(level)
                units = {"fps_per_session": "frames/s per session",
                         "cpu_ms_per_s_per_session": "CPU ms/s per session"}  # fmt: skip
                for key, unit in units.items():
                    result.row(f"{transport} K={k}: {key}", unit, level[key])
                result.row(
                    f"{transport} K={k}: tick latency p50/p99", "ms",
                    {"median": level["tick_p50_ms"], "min": level["tick_p50_ms"],
                     "max": level["tick_p99_ms"]},
                    ticks_seen=level["ticks_seen"], ticks_sent=level["ticks_sent"],
                )  # fmt: skip
    result.extra["levels"] = out


def run(config: Config) -> SuiteResult:
    started = time.perf_counter()
    transports, missing = bench_transports()
    result = SuiteResult(
        suite="transport",
        title="transport: aiortc peer vs LiveKit room, same sessions",
        quick=config.quick,
        repeats=config.reps(full=3, quick=1),
        method=(
            "K Sessions (SyntheticTrack 320x180 @ 15 fps) per transport against an embedded "
            f"server in a child process (tick every {TICK_INTERVAL_S} s), K = 1 and 10; per "
            "level, windows of 4 s after a 2 s settle: generated frames delivered to "
            "session.frames per second per session, this process's CPU per session, tick "
            f"latency from the server's send stamp (rows: median = p50, max = p99){missing}"
        ),
    )
    asyncio.run(_run(config, result, transports))
    result.elapsed_s = time.perf_counter() - started
    return result
