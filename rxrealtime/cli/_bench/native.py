"""native: one session at the service's own sizes (1280x720 and 1280x704 at 30 fps), on
both transports, against the embedded server in its own process.

Per transport and size: frames per second sent (the synthetic camera) and received
(``session.frames``), this process's CPU (the client), the server process's CPU and,
on LiveKit, the livekit-server child's apart from it; RSS; time to first frame; tick
latency p99; glass-to-glass latency p50/p90 from ``session.stats`` where the session
measures it. Codec calibration in the same run gives the physical floor of a client:
one encode (its camera) and one decode (the generated video) per frame, times the
frame rate; the suite prints the client's CPU as a ratio to that floor. Then sessions
per machine: K = 1, 2, 3, ... native sessions until one no longer receives its full
frame rate, and the arithmetic for larger machines.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from typing import Any

from ...media import SyntheticTrack
from ...protocol import GenerationTick
from ...session import Session
from ._common import Config, SuiteResult, percentile, summary
from ._scale_codec import Size, codec_ms, h264_realtime_ms
from ._scale_probe import rss_bytes
from ._server import ServerProcess, bench_transports

__all__ = ["run"]

SIZES = {"lucy-2.6": Size(1280, 720, 30), "lucy-restyle-2": Size(1280, 704, 30)}
SETTLE_S = 3.0
FULL_RATE = 0.97
"""A session "holds" its frame rate when it receives at least this share of it (29 of 30)."""


class CountingTrack(SyntheticTrack):
    """The synthetic camera, counting the frames it hands out (frames sent)."""

    sent = 0

    async def recv(self) -> Any:
        frame = await super().recv()
        self.sent += 1
        return frame


class Probe:
    """One session under measurement: frames, first frame, tick arrivals."""

    def __init__(self, srv: ServerProcess, transport: str, model: str, size: Size) -> None:
        self.track = CountingTrack(size.width, size.height, size.fps)
        self.session = Session(srv.url, api_key=srv.api_key, model=model, transport=transport,
                               stats_interval_s=1.0)  # fmt: skip
        self.received = 0
        self.first_frame_s = math.nan
        self.ticks: dict[int, int] = {}
        self.session.frames.subscribe(self._on_frame)
        self.session.generation_ticks.subscribe(self._on_tick)
        self.session.stats.subscribe(lambda _: None)  # stats are sampled while observed
        self._started = 0.0

    def _on_frame(self, _: object) -> None:
        if not self.received:
            self.first_frame_s = time.perf_counter() - self._started
        self.received += 1

    def _on_tick(self, tick: GenerationTick) -> None:
        self.ticks[tick.seconds] = time.monotonic_ns()

    async def connect(self) -> None:
        self._started = time.perf_counter()
        await self.session.connect(local_track=self.track)

    def latency(self) -> tuple[float, float, str | None]:
        """Glass-to-glass p50/p90 (ms) and how frames were matched, from the latest
        stats; NaN when not measured."""
        stats = self.session.stats.latest
        latency = stats.latency if stats is not None else None
        if latency is None or latency.p50_s is None or latency.p90_s is None:
            return math.nan, math.nan, None
        return latency.p50_s * 1000, latency.p90_s * 1000, latency.source


async def _measure(
    srv: ServerProcess, probes: list[Probe], windows: int, window_s: float
) -> dict[str, Any]:
    """Windows of ``window_s`` over ``probes`` (already connected and settled)."""
    k = len(probes)
    await srv.call("tick_log")  # forget the ticks of the settle
    sent_fps: list[float] = []
    recv_fps: list[float] = []
    client: list[float] = []
    server: list[float] = []
    livekit: list[float] = []
    ticks_sent: list[Any] = []
    for _ in range(windows):
        s0, r0 = sum(p.track.sent for p in probes), sum(p.received for p in probes)
        t0, c0 = time.monotonic(), time.process_time()
        (_, m0), (_, l0) = await srv.call("mark"), await srv.call("livekit_cpu")
        await asyncio.sleep(window_s)
        s1, r1 = sum(p.track.sent for p in probes), sum(p.received for p in probes)
        t1, c1 = time.monotonic(), time.process_time()
        (_, m1), (_, l1) = await srv.call("mark"), await srv.call("livekit_cpu")
        span = t1 - t0
        sent_fps.append((s1 - s0) / span / k)
        recv_fps.append((r1 - r0) / span / k)
        client.append((c1 - c0) * 100 / span / k)
        server.append((m1["cpu_s"] - m0["cpu_s"]) * 100 / span / k)
        if l0 is not None and l1 is not None:
            livekit.append((l1 - l0) * 100 / span / k)
        _, entries, _ = await srv.call("tick_log")
        ticks_sent.extend(entries)
    await asyncio.sleep(1.5)  # the last ticks of the window arrive
    by_sid = {p.session.session_id: p.ticks for p in probes}
    tick_ms = [(by_sid[sid][s] - ns) / 1e6 for sid, s, ns in ticks_sent if s in by_sid.get(sid, {})]
    p50, p90, source = probes[0].latency()
    return {
        "k": k,
        "sent_fps": summary(sent_fps),
        "received_fps": summary(recv_fps),
        "client_cpu_pct": summary(client),
        "server_cpu_pct": summary(server),
        "livekit_server_cpu_pct": summary(livekit) if livekit else None,
        "rss_mib": round(rss_bytes() / 2**20, 1),
        "first_frame_s": summary([p.first_frame_s for p in probes]),
        "tick_p99_ms": percentile(tick_ms, 99),
        "ticks": f"{len(tick_ms)} of {len(ticks_sent)}",
        "glass_p50_ms": p50,
        "glass_p90_ms": p90,
        "glass_source": source,
    }


async def _level(
    srv: ServerProcess, transport: str, model: str, k: int, windows: int, window_s: float
) -> dict[str, Any]:
    probes = [Probe(srv, transport, model, SIZES[model]) for _ in range(k)]
    try:
        await asyncio.gather(*(p.connect() for p in probes))
        await asyncio.sleep(SETTLE_S)
        return await _measure(srv, probes, windows, window_s)
    finally:
        await asyncio.gather(*(p.session.disconnect() for p in probes), return_exceptions=True)


def _floor_pct(codec: dict[str, Any], size: Size) -> float:
    """A client's least CPU (% of a core): one encode and one decode per frame."""
    per_frame = float(codec["encode"]["min"]) + float(codec["decode"]["min"])
    return per_frame * size.fps / 10


async def _run(config: Config, result: SuiteResult, transports: list[str]) -> None:
    windows = config.reps(full=3, quick=1)
    window_s = 2.0 if config.quick else 5.0
    frames, repeats = (10, 1) if config.quick else (40, 5)
    codecs = {  # what each transport negotiates: aiortc VP8, LiveKit H.264 (OpenH264)
        "aiortc": lambda size: codec_ms(size, frames, repeats, codec="vp8"),
        "livekit": lambda size: h264_realtime_ms(size, frames, repeats),
    }
    levels: list[dict[str, Any]] = []
    for transport in transports:
        media = "livekit" if transport == "livekit" else "aiortc"
        async with ServerProcess(tick_interval_s=1.0, media=media) as srv:
            for model, size in SIZES.items():
                codec = codecs[transport](size)
                floor = _floor_pct(codec, size)
                level = await _level(srv, transport, model, 1, windows, window_s)
                per_frame = float(codec["encode"]["min"]) + float(codec["decode"]["min"])
                level.update(transport=transport, model=model, size=size.label, codec=codec,
                             client_floor_pct=round(floor, 1),
                             glass_floor_ms=round(2 * per_frame + 1000 / size.fps, 1))  # fmt: skip
                levels.append(level)
                _report(result, level)
                print(f"bench native: {transport} {size.label}: "
                      f"{level['received_fps']['median']:.1f} fps received", file=sys.stderr,
                      flush=True)  # fmt: skip
            held = await _capacity(srv, transport, windows, window_s, quick=config.quick)
            _report_capacity(result, transport, held, levels)
    result.extra["levels"] = levels
    _targets(result, levels)


async def _capacity(
    srv: ServerProcess, transport: str, windows: int, window_s: float, quick: bool
) -> list[dict[str, Any]]:
    """K = 2, 3, ... native sessions (lucy-2.6) until one level misses the full rate."""
    steps: list[dict[str, Any]] = []
    for k in range(2, 3 if quick else 5):
        level = await _level(srv, transport, "lucy-2.6", k, max(1, windows - 1), window_s)
        steps.append(level)
        print(f"bench native: {transport} K={k}: {level['received_fps']['median']:.1f} fps "
              "per session", file=sys.stderr, flush=True)  # fmt: skip
        if level["received_fps"]["median"] < FULL_RATE * 30:
            break
    return steps


def one(value: float) -> dict[str, float]:
    """A single figure as a row's summary."""
    return {"median": value, "min": value, "max": value, "n": 1}


def _report(result: SuiteResult, level: dict[str, Any]) -> None:
    name = f"{level['transport']} {level['size']}"
    for key, unit in (("sent_fps", "frames/s sent"), ("received_fps", "frames/s received"),
                      ("client_cpu_pct", "% of a core, client"),
                      ("server_cpu_pct", "% of a core, server process"),
                      ("first_frame_s", "s to first frame")):  # fmt: skip
        result.row(f"{name}: {key}", unit, level[key])
    if level["livekit_server_cpu_pct"] is not None:
        result.row(f"{name}: livekit-server CPU", "% of a core", level["livekit_server_cpu_pct"])
    result.row(f"{name}: client codec floor", "% of a core", one(level["client_floor_pct"]),
               codec=level["codec"]["codec"])  # fmt: skip
    result.row(f"{name}: RSS", "MiB", one(level["rss_mib"]))
    result.row(f"{name}: tick latency p99", "ms", one(level["tick_p99_ms"]), ticks=level["ticks"])
    result.row(f"{name}: glass-to-glass p50/p90", "ms",
               {"median": level["glass_p50_ms"], "min": level["glass_p50_ms"],
                "max": level["glass_p90_ms"], "n": 1},
               source=level["glass_source"])  # fmt: skip
    result.row(f"{name}: glass-to-glass floor", "ms", one(level["glass_floor_ms"]),
               arithmetic="one encode + one decode each way, plus one frame interval")  # fmt: skip


def _report_capacity(
    result: SuiteResult, transport: str, steps: list[dict[str, Any]], levels: list[dict[str, Any]]
) -> None:
    one = next(lv for lv in levels if lv["transport"] == transport and lv["model"] == "lucy-2.6")
    held = max([1, *(s["k"] for s in steps if s["received_fps"]["median"] >= FULL_RATE * 30)])
    per_session = one["client_cpu_pct"]["median"] + one["server_cpu_pct"]["median"]
    per_session += (one["livekit_server_cpu_pct"] or {}).get("median", 0.0)
    cores = os.cpu_count() or 1
    result.row(f"{transport}: native sessions held at full rate here", "sessions",
               {"median": held, "min": held, "max": held, "n": 1},
               steps=[(s["k"], round(s["received_fps"]["median"], 1)) for s in steps],
               arithmetic=(f"client + server (+ livekit-server) CPU per session at K=1: "
                           f"{per_session:.0f} % of a core; {cores} cores hold at most "
                           f"{cores * 100 / per_session:.1f} sessions with client and server "
                           f"on one machine; a client-only machine of N cores holds about "
                           f"N x {100 / one['client_cpu_pct']['median']:.1f}"))  # fmt: skip


def _targets(result: SuiteResult, levels: list[dict[str, Any]]) -> None:
    for level in levels:
        name = f"{level['transport']} {level['size']}"
        glass, floor = level["glass_p50_ms"], level["glass_floor_ms"]
        measured = not math.isnan(glass)
        note = f"{glass / floor:.1f}x the floor, by {level['glass_source']}" if measured else ""
        result.target(f"{name}: glass-to-glass p50 reported, with its floor", round(glass, 1),
                      f"measured (floor {floor} ms)", measured, note or "no samples")  # fmt: skip
        received = level["received_fps"]["median"]
        if level["transport"] == "livekit" and level["size"] == "1280x720@30":
            result.target("LiveKit receives >= 29 fps of a 30 fps source at 1280x720 (1 session)",
                          round(received, 1), ">= 29", received >= 29)  # fmt: skip
        ratio = level["client_cpu_pct"]["median"] / level["client_floor_pct"]
        result.target(f"{name}: client CPU within 1.5x of its codec floor", round(ratio, 2),
                      "<= 1.5", ratio <= 1.5,
                      f"{level['client_cpu_pct']['median']:.0f} % vs floor "
                      f"{level['client_floor_pct']:.0f} % ({level['codec']['codec']})")  # fmt: skip


def run(config: Config) -> SuiteResult:
    started = time.perf_counter()
    transports, missing = bench_transports()
    result = SuiteResult(
        suite="native",
        title="native: one session at the service's sizes, 30 fps, both transports",
        quick=config.quick,
        repeats=config.reps(full=3, quick=1),
        method=(
            "One Session (model lucy-2.6 at 1280x720@30, lucy-restyle-2 at 1280x704@30, a "
            "SyntheticTrack of that size) per transport against an embedded server in a "
            "child process; after a 3 s settle, windows of 5 s: frames sent and received "
            "per second, CPU of this process (client), of the server process and of its "
            "livekit-server child, RSS, time to first frame, tick latency p99 (the server's "
            "send stamp, same clock), glass-to-glass latency from session.stats. Codec "
            "floor: aiortc's VP8 encoder and decoder (aiortc), libx264 ultrafast/zerolatency "
            "through PyAV as the stand-in for LiveKit's OpenH264 (an estimate); then K = 2, "
            f"3, 4 sessions until one misses {FULL_RATE:.0%} of the frame rate{missing}"
        ),
    )
    asyncio.run(_run(config, result, transports))
    result.elapsed_s = time.perf_counter() - started
    return result
