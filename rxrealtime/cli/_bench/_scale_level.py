"""One scale level: a fresh server process and a fresh client process, K sessions, the
figures. The suite (:mod:`.scale`) runs one per video size and K.

The parent only orchestrates: it starts both processes at once, asks the client to
connect, then marks window boundaries on both sides (CPU, RSS, per-thread CPU, frames
received) and reads the server's tick log at each, profiles both main threads in a last
window, and collects the client's tick arrivals to match them with the server's sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

from ._common import SuiteResult, percentile, summary
from ._scale_codec import Size
from ._server import ChildProcess, ServerProcess

__all__ = ["add_rows", "measure_level", "where"]

MiB = 2**20
CHILD = "rxrealtime.cli._bench._scale_child"
THREAD_ORDER = ("main", "encode", "decode", "other", "native")


async def _marks(srv: ChildProcess, child: ChildProcess) -> tuple[dict[str, Any], ...]:
    (_, server), (_, client) = await asyncio.gather(srv.call("mark"), child.call("mark"))
    return server, client


def _per_session(a: dict[str, Any], b: dict[str, Any], n: int) -> tuple[float, float]:
    """(CPU ms per wall second per session, wall seconds) between two snapshots."""
    wall = (b["time_ns"] - a["time_ns"]) / 1e9
    if n <= 0 or wall <= 0:
        return float("nan"), wall
    return (b["cpu_s"] - a["cpu_s"]) * 1000 / wall / n, wall


def _threads(a: dict[str, Any], b: dict[str, Any], n: int) -> dict[str, float]:
    """CPU ms per second per session of each thread group between two snapshots."""
    wall = (b["time_ns"] - a["time_ns"]) / 1e9
    out = {}
    for role in THREAD_ORDER:
        spent = b["threads"].get(role, 0.0) - a["threads"].get(role, 0.0)
        if n > 0 and wall > 0 and (role in b["threads"]):
            out[role] = round(spent * 1000 / wall / n, 3)
    return out


def _shares(main: dict[str, float]) -> dict[str, float]:
    """The main thread's profiled time per group, as % of its total."""
    total = sum(main.values())
    return {g: round(100 * s / total, 1) for g, s in main.items() if total and s / total >= 0.005}


def where(threads: dict[str, float], shares: dict[str, float]) -> str:
    """One line: CPU ms/s per session by thread, and the main thread's split by library."""
    parts = []
    for role, value in threads.items():
        text = f"{role} {value:.2f}"
        if role == "main" and shares:
            split = ", ".join(
                f"{g} {p:.0f}%" for g, p in sorted(shares.items(), key=lambda i: -i[1])
            )
            text += f" ({split})"
        parts.append(text)
    return " | ".join(parts)


def _latencies(
    sent: list[list[Any]], arrivals: list[list[Any]]
) -> tuple[list[float], list[float], int, int]:
    seen = {(sid, seconds): ns for sid, seconds, ns in arrivals}
    p50, p99, lost, total = [], [], 0, 0
    for entries in sent:
        window = []
        for sid, seconds, sent_ns in entries:
            total += 1
            arrived = seen.get((sid, seconds))
            if arrived is None:
                lost += 1
            else:
                window.append((arrived - sent_ns) / 1e6)
        p50.append(percentile(window, 50))
        p99.append(percentile(window, 99))
    return p50, p99, lost, total


async def measure_level(
    size: Size,
    k: int,
    windows: int,
    tick_interval_s: float,
    timing: dict[str, float],
    log: Callable[[str], None],
    video_backoff: bool = True,
) -> dict[str, Any]:
    """Run one level end to end and return its figures (see :mod:`.scale`); the client's
    sessions run with ``video_backoff`` (the default) or without."""
    srv = ServerProcess(tick_interval_s=tick_interval_s)
    child = ChildProcess(
        CHILD, {"k": k, "width": size.width, "height": size.height, "fps": size.fps,
                "video_backoff": video_backoff},
    )  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_exit(srv)
        stack.push_async_exit(child)  # exits first: sessions disconnect before the server
        started = await asyncio.gather(srv.__aenter__(), child.__aenter__(), return_exceptions=True)
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome
        rss0 = child.ready[1]
        _, server0 = await srv.call("mark")
        _, report = await child.call("connect", srv.url, srv.api_key, timeout=900)
        n = report["connected"]
        failed = f"; failed: {report['failed']}" if report["failed"] else ""
        log(
            f"bench scale: {size.label} K={k}: {n}/{k} connected "
            f"in {report['connect_s']:.1f} s{failed}"
        )
        await asyncio.sleep(timing["settle_s"])
        await srv.call("tick_log")  # forget ticks sent while connecting
        marks = [await _marks(srv, child)]
        sent: list[list[Any]] = []
        for _ in range(windows):
            await asyncio.sleep(timing["window_s"])
            _, entries, _ = await srv.call("tick_log")
            sent.append(entries)
            marks.append(await _marks(srv, child))
        (_, server_profile), (_, client_profile) = await asyncio.gather(
            srv.call("profile", timing["profile_s"]), child.call("profile", timing["profile_s"])
        )
        _, arrivals = await child.call("arrivals")
    cpu, server_cpu, fps, rss, server_rss = [], [], [], [], []
    for (s0, c0), (s1, c1) in itertools.pairwise(marks):
        client_ms, wall = _per_session(c0, c1, n)
        cpu.append(client_ms)
        server_cpu.append(_per_session(s0, s1, n)[0])
        fps.append((c1["frames"] - c0["frames"]) / wall / n if n and wall > 0 else float("nan"))
        rss.append((c1["rss"] - rss0) / n / MiB if n else float("nan"))
        server_rss.append((s1["rss"] - server0["rss"]) / n / MiB if n else float("nan"))
    p50, p99, lost, total = _latencies(sent, arrivals)
    last = marks[-1][1]
    each = report["connect_each_s"]
    return {
        "k": k,
        "size": size.label,
        "video_backoff": video_backoff,
        "connected": n,
        "connect_s": round(report["connect_s"], 2),
        "connect_each_s": summary(each),
        "connect_failed": report["failed"],
        "connect_timeout_s": report["timeout_s"],
        "tick_p50_ms": summary(p50),
        "tick_p99_ms": summary(p99),
        "ticks_sent": total,
        "ticks_lost": lost,
        "fps_per_session": summary(fps),
        "cpu_ms_per_s_per_session": summary(cpu),
        "server_cpu_ms_per_s_per_session": summary(server_cpu),
        "rss_mib_per_session": summary(rss),
        "rss_mib_total": round(last["rss"] / MiB, 1),
        "rss_mib_before_sessions": round(rss0 / MiB, 1),
        "server_rss_mib_per_session": summary(server_rss),
        "threads": {
            "client": _threads(marks[0][1], marks[-1][1], n),
            "server": _threads(marks[0][0], marks[-1][0], n),
        },
        "profile": {
            "client": _shares(client_profile["main"]["groups"]),
            "server": _shares(server_profile["main"]["groups"]),
        },
        "profile_top": {
            "client": client_profile["main"]["top"],
            "server": server_profile["main"]["top"],
            "seconds": timing["profile_s"],
        },
        "errors": last["errors"],
        "error_count": last["error_count"],
    }


def add_rows(result: SuiteResult, level: dict[str, Any]) -> None:
    """The level's figures as table rows: the headline row carries the scalars."""
    name = f"{level['size']} K={level['k']}" + ("" if level["video_backoff"] else " no backoff")
    result.row(
        f"{name}: tick p99",
        "ms",
        level["tick_p99_ms"],
        connected=f"{level['connected']}/{level['k']}",
        connect_s=level["connect_s"],
        lost=f"{level['ticks_lost']}/{level['ticks_sent']}",
        fps=level["fps_per_session"]["median"],
        rss_total_mib=level["rss_mib_total"],
    )
    result.row(f"{name}: tick p50", "ms", level["tick_p50_ms"])
    result.row(f"{name}: frames received per session", "frames/s", level["fps_per_session"])
    for side, key in (
        ("client", "cpu_ms_per_s_per_session"),
        ("server", "server_cpu_ms_per_s_per_session"),
    ):
        result.row(
            f"{name}: {side} CPU per session",
            "CPU ms/s",
            level[key],
            where=where(level["threads"][side], level["profile"][side]),
        )
    result.row(f"{name}: client RSS per session", "MiB", level["rss_mib_per_session"])
    result.row(f"{name}: server RSS per session", "MiB", level["server_rss_mib_per_session"])
