"""scale: K concurrent full sessions (signaling + a small video peer) in one process.

Every session is a real :class:`~rxrealtime.Session` connected with a small
:class:`~rxrealtime.media.SyntheticTrack` (64x48 at 5 fps: aiortc encodes and decodes
VP8 in this process, so the video is kept small) to one embedded server running in a
child process (:mod:`._server`) with a 0.2 s billing clock. Only the client side is in
the measured process.

For each K, after all sessions are up, ``windows`` consecutive windows are measured
(the repeats): the process's CPU time per session per second, RSS growth per session
(``/proc/self/statm``), and tick latency: the server stamps each ``generation_tick``
as it broadcasts it (same monotonic clock), the subscriber stamps it on arrival. A tick
the server sent within a window that has not arrived one second after the last window
is lost.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time
from typing import Any

from ..media import SyntheticTrack
from ..protocol import GenerationTick
from ..session import Session
from ._common import Config, SuiteResult, percentile, summary
from ._server import ServerProcess

__all__ = ["run"]

TICK_INTERVAL_S = 0.2
GRACE_S = 1.0
SETTLE_S = 2.0


def rss_bytes() -> int:
    """Current resident set size (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


async def _connect_all(sessions: list[Session], batch: int) -> None:
    for start in range(0, len(sessions), batch):
        await asyncio.gather(
            *(
                s.connect(local_track=SyntheticTrack(width=64, height=48, fps=5.0))
                for s in sessions[start : start + batch]
            )
        )


async def _level(
    srv: ServerProcess, k: int, windows: int, window_s: float, log: Any
) -> dict[str, Any]:
    clock = time.monotonic_ns
    sessions = [Session(srv.url, api_key=srv.api_key, model="mirage_v2") for _ in range(k)]
    arrivals: list[dict[int, int]] = [{} for _ in range(k)]
    errors: list[str] = []
    for session, seen in zip(sessions, arrivals, strict=True):

        def on_tick(tick: GenerationTick, seen: dict[int, int] = seen) -> None:
            seen[tick.seconds] = clock()

        session.generation_ticks.subscribe(on_tick)
        session.errors.subscribe(lambda e: errors.append(f"{type(e).__name__}: {e}"))
    rss0 = rss_bytes()
    started = time.perf_counter()
    try:
        await _connect_all(sessions, batch=10)
        connect_s = time.perf_counter() - started
        log(f"bench scale: K={k} connected in {connect_s:.1f} s")
        await asyncio.sleep(SETTLE_S)  # steady state: clocks started, connect surge over
        await srv.call("tick_log")  # forget ticks sent while connecting
        sent: list[list[Any]] = []
        cpu: list[float] = []
        rss: list[float] = []
        server_cpu: list[float] = []
        bounds: list[tuple[int, int]] = []
        _, _, server_cpu0 = await srv.call("tick_log")
        for _ in range(windows):
            t0, c0 = clock(), time.process_time()
            await asyncio.sleep(window_s)
            t1, c1 = clock(), time.process_time()
            _, entries, server_c = await srv.call("tick_log")
            sent.append(entries)
            wall = (t1 - t0) / 1e9
            cpu.append((c1 - c0) * 1000 / wall / k)
            server_cpu.append((server_c - server_cpu0) * 1000 / wall / k)
            server_cpu0 = server_c
            rss.append((rss_bytes() - rss0) / k / 2**20)
            bounds.append((t0, t1))
        await asyncio.sleep(GRACE_S)
        by_sid = {s.session_id: seen for s, seen in zip(sessions, arrivals, strict=True)}
        p99: list[float] = []
        p50: list[float] = []
        lost = total = 0
        for entries in sent:
            latencies = []
            for sid, seconds, sent_ns in entries:
                arrived = by_sid.get(sid, {}).get(seconds)
                total += 1
                if arrived is None:
                    lost += 1
                else:
                    latencies.append((arrived - sent_ns) / 1e6)
            p50.append(percentile(latencies, 50))
            p99.append(percentile(latencies, 99))
    finally:
        await asyncio.gather(*(s.disconnect() for s in sessions), return_exceptions=True)
    return {
        "k": k,
        "connect_s": round(connect_s, 2),
        "cpu_ms_per_s_per_session": summary(cpu),
        "server_cpu_ms_per_s_per_session": summary(server_cpu),
        "rss_mib_per_session": summary(rss),
        "tick_p50_ms": summary(p50),
        "tick_p99_ms": summary(p99),
        "ticks_sent": total,
        "ticks_lost": lost,
        "errors": errors[:10],
        "error_count": len(errors),
    }


async def _run(config: Config, result: SuiteResult, levels: tuple[int, ...]) -> None:
    windows = config.reps(full=3, quick=2)
    window_s = 1.5 if config.quick else 4.0

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    out = []
    async with ServerProcess(tick_interval_s=TICK_INTERVAL_S) as srv:
        for k in levels:
            level = await _level(srv, k, windows, window_s, log)
            out.append(level)
            for key, unit in (
                ("tick_p50_ms", "ms"),
                ("tick_p99_ms", "ms"),
                ("cpu_ms_per_s_per_session", "CPU ms/s per session"),
                ("rss_mib_per_session", "MiB per session"),
                ("server_cpu_ms_per_s_per_session", "server CPU ms/s per session"),
            ):
                result.row(
                    f"K={k}: {key}",
                    unit,
                    level[key],
                    ticks_sent=level["ticks_sent"],
                    ticks_lost=level["ticks_lost"],
                    connect_s=level["connect_s"],
                )
    result.extra["levels"] = out
    top = out[-1]
    note = f"measured at K={top['k']} (largest level of this run)"
    if top["k"] < 100:
        note += "; K=100 only runs in a full run"
    worst = top["tick_p99_ms"]["max"]
    result.target(
        "tick p99 < 50 ms with 100 sessions",
        top["tick_p99_ms"]["median"],
        "< 50 ms",
        top["k"] >= 100 and top["tick_p99_ms"]["median"] < 50,
        f"{note}; median of the windows' p99, worst window {worst:.1f} ms",
    )
    result.target(
        "no tick lost with 100 sessions",
        top["ticks_lost"],
        "0",
        top["k"] >= 100 and top["ticks_lost"] == 0,
        f"{top['ticks_lost']} of {top['ticks_sent']} ticks; {note}",
    )


def run(config: Config) -> SuiteResult:
    started = time.perf_counter()
    levels = (1, 3) if config.quick else (1, 10, 50, 100)
    windows = config.reps(full=3, quick=2)
    result = SuiteResult(
        suite="scale",
        title="scale: K concurrent sessions in one process",
        quick=config.quick,
        repeats=windows,
        method=(
            f"K full Sessions (SyntheticTrack 64x48 @ 5 fps, default options) against one "
            f"embedded server in a child process (tick every {TICK_INTERVAL_S} s); per K, "
            f"{windows} consecutive measurement windows of {1.5 if config.quick else 4.0} s, "
            f"starting {SETTLE_S} s after the last session connected, are the repeats. "
            "CPU is this process's time per session per wall second; RSS "
            "growth per session since before connecting; tick latency from the server's "
            f"send stamp to the subscriber (same clock); lost = not arrived {GRACE_S} s "
            "after the last window."
        ),
    )
    asyncio.run(_run(config, result, levels))
    result.elapsed_s = time.perf_counter() - started
    return result
