"""scale: K concurrent full sessions at real video sizes, each level in fresh processes.

Every level (K sessions of one video size) gets a fresh client process
(:mod:`._scale_child`) and a fresh embedded server process (:mod:`._server`, billing
clock every 0.2 s), so neither side reuses memory freed by an earlier level and RSS per
session is what a new process pays. Two sizes run: the default :class:`SyntheticTrack`
(320x180 at 15 fps, what ``connect()`` users send) and a small one (64x48 at 5 fps).
Every session is a real :class:`~rxrealtime.Session` with the default options; all K
connect at once, each within the default ``connect_timeout_s``; a failed connect is a
figure, not a crash.

After all sessions are up and a settling pause, ``windows`` consecutive windows are the
repeats: each side's CPU per session per wall second, RSS per session, frames received
per session per second, and tick latency (the server stamps each ``generation_tick`` as it
sends it, the client as it arrives, one monotonic clock). A tick the server sent within a
window that has not arrived by the end of the profile window (at least
:data:`GRACE_S` later) is lost. A last window profiles both sides (:mod:`._scale_probe`):
CPU by thread (asyncio main thread, aiortc's encoder executor and decoder threads,
native codec threads) and cProfile of each main thread grouped by library.

VP8 costs what it costs: :mod:`._scale_codec` times one encode and one decode per frame
size with aiortc's own codec classes, so a target the codec alone makes impossible on
this machine says so with the arithmetic.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from ._common import Config, SuiteResult
from ._scale_codec import Size, codec_floor, codec_ms
from ._scale_level import add_rows, measure_level

__all__ = ["run"]

TICK_INTERVAL_S = 0.2
GRACE_S = 1.0
DEFAULT = Size(320, 180, 15.0)
SMALL = Size(64, 48, 5.0)


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _run(
    result: SuiteResult,
    plan: list[tuple[Size, int, bool]],
    windows: int,
    timing: dict[str, float],
) -> None:
    levels = []
    for size, k, backoff in plan:
        level = await measure_level(size, k, windows, TICK_INTERVAL_S, timing, _log, backoff)
        levels.append(level)
        add_rows(result, level)
    result.extra["levels"] = levels


def _targets(
    result: SuiteResult, levels: list[dict[str, Any]], floors: dict[str, dict[str, Any] | None]
) -> None:
    """The issue's targets at K=100; where the codec alone needs more than the machine's
    cores, the note carries that arithmetic (the bar is not lowered)."""
    cores = os.cpu_count() or 1
    nan = float("nan")
    for size, p99_limit in ((DEFAULT, 50.0), (SMALL, 20.0)):
        at = [lv for lv in levels if lv["size"] == size.label and lv["video_backoff"]]
        top: dict[str, Any] = max(at, key=lambda lv: lv["k"]) if at else {}
        note = f"measured at K={top['k']}" if top else "not run in this configuration"
        if top and top["k"] < 100:
            note += "; K=100 only runs in a full run"
        floor = floors.get(size.label)
        if floor is not None and floor["cores_needed"] > cores:
            note += f"; codec arithmetic: {floor['text']}"
        full = bool(top) and top["k"] >= 100
        if size == DEFAULT:
            connected = top.get("connected", 0)
            result.target(
                f"100 sessions at {size.label} connect within connect_timeout_s",
                top.get("connect_s", nan),
                f"all 100 within {top.get('connect_timeout_s', 30.0):g} s",
                full and connected == 100 and not top["connect_failed"],
                f"{connected} of {top.get('k', 0)} connected, failed: "
                f"{top.get('connect_failed') or 'none'}; {note}",
            )
        p99 = top.get("tick_p99_ms", {"median": nan, "max": nan})
        result.target(
            f"tick p99 < {p99_limit:g} ms with 100 sessions at {size.label}",
            p99["median"],
            f"< {p99_limit:g} ms",
            full and p99["median"] < p99_limit,
            f"median of the windows' p99, worst window {p99['max']:.1f} ms; {note}",
        )
        lost, sent = top.get("ticks_lost", nan), top.get("ticks_sent", 0)
        result.target(
            f"no tick lost with 100 sessions at {size.label}",
            lost,
            "0",
            full and lost == 0 and sent > 0,
            f"{lost} of {sent} ticks; {note}",
        )


def run(config: Config) -> SuiteResult:
    started = time.perf_counter()
    sizes = (SMALL,) if config.quick else (DEFAULT, SMALL)
    ks = (1, 3) if config.quick else (1, 10, 50, 100)
    windows = config.reps(full=3, quick=2)
    timing = {
        "settle_s": 1.0 if config.quick else 2.0,
        "window_s": 1.5 if config.quick else 4.0,
        "profile_s": max(GRACE_S, 1.0 if config.quick else 3.0),
    }
    result = SuiteResult(
        suite="scale",
        title="scale: K concurrent sessions, fresh client and server processes per level",
        quick=config.quick,
        repeats=windows,
        method=(
            f"Per level (video size x K), a fresh embedded server process (tick every "
            f"{TICK_INTERVAL_S} s) and a fresh client process holding K Sessions "
            "(SyntheticTrack, default options), all K connecting at once; "
            f"{windows} measurement windows of {timing['window_s']:g} s after a "
            "settling pause are the repeats. CPU is each process's CPU time per session "
            "per wall second; RSS per session is (RSS of the client process after "
            "connecting - before any session) / K; tick latency from the server's send "
            "stamp to the subscriber (same clock); lost = not arrived by the end of the "
            "profile window. 'where' splits CPU by thread and the main thread by library "
            "(cProfile, in an extra window after the measured ones). Sessions run with "
            "video_backoff (frames dropped before encoding while the loop lags); the "
            "saturated level (100 at 320x180@15) runs once more without it, for comparison."
        ),
    )
    codec = {size.label: codec_ms(size) for size in sizes}
    result.extra["codec"] = codec
    for size in sizes:
        ms = codec[size.label]
        for op in ("encode", "decode"):
            result.row(f"VP8 {op}, one {size.label.split('@')[0]} frame", "ms", ms[op])
    cores = os.cpu_count() or 1
    floors = {size.label: codec_floor(codec[size.label], size, 100, cores) for size in sizes}
    for size in sizes:
        floor = floors[size.label]
        if floor is not None:
            need = floor["cores_needed"]
            result.row(
                f"codec floor, 100 sessions at {size.label}",
                f"cores (of {cores})",
                {"median": need, "min": need, "max": need, "n": 1},
                note=floor["text"],
            )
    plan = [(size, k, True) for size in sizes for k in ks]
    if not config.quick:  # the saturated level once more, every frame sent: side by side
        plan.append((DEFAULT, 100, False))
    asyncio.run(_run(result, plan, windows, timing))
    _targets(result, result.extra["levels"], floors)
    result.elapsed_s = time.perf_counter() - started
    return result
