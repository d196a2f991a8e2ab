"""e2e: ``generation_tick`` frames over a real loopback WebSocket, socket to subscriber.

The embedded server runs in a child process (:mod:`._server`) and floods frames into the
signaling socket. Two clients, alternating within each repeat:

* **bare**: an aiohttp ``ws_connect`` and a ``while``/``await ws.receive()`` loop (faster
  than ``async for``, whose ``__anext__`` adds a frame per message) that counts and
  discards frames: the limit of any client built on aiohttp;
* **ours**: a real :class:`~rxrealtime.Session` connected with ``transport="none"``
  (signaling only, no peer connection), so every frame takes the production path:
  the signaling read loop -> decode -> routing -> ``generation_ticks`` -> a subscriber.
  The peer connection is left out because its video would compete for the CPU and
  blur the figure; the scale suite measures full sessions;
* **ours with a tape**: the same, while a :class:`~rxrealtime.tapes.TapeRecorder` records
  the session (every frame appended on the hot path, encoded by its flush task).

Throughput: ``n`` frames sent back to back; frames/s = n / (last frame at the subscriber -
first frame sent). The client's CPU per frame (process time over the flood) is reported
too: if the client was not busy all the time, the server's sending was the bottleneck
and only the CPU figures tell the clients apart. Latency: frames paced 1 ms apart; the
server reports when each tick value left (``time.monotonic_ns``, one clock for both
processes), the client when it arrived.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from .. import protocol as p
from ..session import Session
from ..tapes import TapeRecorder
from ..urls import build_url
from ._common import Config, SuiteResult, percentile, ratio_per_repeat, summary
from ._server import ServerProcess

__all__ = ["run"]

MAX_FRAME = 4 * 1024 * 1024


class _Box:
    """What a receiver counts and records; ``done`` resolves at the ``target``-th frame."""

    def __init__(self) -> None:
        self.n = 0
        self.target = 0
        self.record: list[tuple[int, Any]] | None = None
        self.done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def arm(self, target: int, record: bool) -> None:
        self.n, self.target = 0, target
        self.record = [] if record else None
        self.done = asyncio.get_running_loop().create_future()


class _Bare:
    """The limit: aiohttp's receive loop, discarding frames."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.box = _Box()

    async def open(self) -> None:
        self.http = aiohttp.ClientSession()
        self.ws = await self.http.ws_connect(self.url, max_msg_size=MAX_FRAME, autoclose=True)
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        box, clock, receive = self.box, time.monotonic_ns, self.ws.receive
        while True:
            msg = await receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            if box.record is not None:
                box.record.append((clock(), msg.data))
            box.n += 1
            if box.n == box.target:
                box.done.set_result(clock())

    def latencies(self, sent: dict[int, int]) -> list[float]:
        assert self.box.record is not None
        return [(t - sent[int(d[d.rindex(":") + 1 : -1])]) / 1e3 for t, d in self.box.record]

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


class _Ours:
    """A real Session, signaling only, one subscriber on ``generation_ticks``; with
    ``tape``, a :class:`~rxrealtime.tapes.TapeRecorder` records it (every frame)."""

    def __init__(self, url: str, api_key: str, tape: Path | None = None) -> None:
        self.session = Session(url, api_key=api_key, stats_interval_s=None, transport="none")
        self.box = _Box()
        self.tape = tape
        self.recorder: TapeRecorder | None = None

    async def open(self) -> None:
        box, clock = self.box, time.monotonic_ns
        if self.tape is not None:
            self.recorder = TapeRecorder(self.session, self.tape).start()

        def on_tick(tick: p.GenerationTick) -> None:
            if box.record is not None:
                box.record.append((clock(), tick.seconds))
            box.n += 1
            if box.n == box.target:
                box.done.set_result(clock())

        self.session.generation_ticks.subscribe(on_tick)
        await self.session.connect()

    def latencies(self, sent: dict[int, int]) -> list[float]:
        assert self.box.record is not None
        return [(t - sent[seconds]) / 1e3 for t, seconds in self.box.record]

    async def close(self) -> None:
        await self.session.disconnect()
        if self.recorder is not None:
            await self.recorder.close()
            assert self.recorder.error is None, self.recorder.error


async def _one(
    client: _Bare | _Ours, srv: ServerProcess, n: int, paced: int, interval: float
) -> dict[str, float]:
    await client.open()
    try:
        await srv.call("wait_sessions", 1)
        box = client.box
        box.arm(min(n, 2000), record=False)  # warm-up: caches, allocator, branch predictors
        srv.send("flood", box.target)
        await asyncio.wait_for(box.done, 60)
        await srv.reply()

        box.arm(n, record=False)
        cpu0, wall0 = time.process_time_ns(), time.monotonic_ns()
        srv.send("flood", n)
        last = await asyncio.wait_for(box.done, 120)
        cpu, wall = time.process_time_ns() - cpu0, time.monotonic_ns() - wall0
        _, first, _ = await srv.reply()

        box.arm(paced, record=True)
        srv.send("paced", paced, interval)
        await asyncio.wait_for(box.done, 120)
        _, _, _, sent = await srv.reply()
        lat = client.latencies(dict(sent))
    finally:
        await client.close()
    return {
        "fps": n / ((last - first) / 1e9),
        "cpu_ns_per_frame": cpu / n,
        "busy": cpu / wall,
        "p50_us": percentile(lat, 50),
        "p99_us": percentile(lat, 99),
    }


async def _run(config: Config, result: SuiteResult) -> None:
    repeats = config.reps(full=11, quick=2)
    n, paced = (3000, 100) if config.quick else (30000, 1000)
    interval = 0.001
    kinds = ("bare", "ours", "tape")
    async with ServerProcess(tick_interval_s=3600.0) as srv:
        url = build_url(srv.url, "/v1/stream", {"api_key": srv.api_key, "model": "mirage_v2"})
        runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
        with tempfile.TemporaryDirectory() as folder:
            for rep in range(repeats):
                for kind in kinds[rep % 3 :] + kinds[: rep % 3]:  # rotated each repeat
                    tape = Path(folder) / f"{rep}.tape.jsonl" if kind == "tape" else None
                    client = _Bare(url) if kind == "bare" else _Ours(srv.url, srv.api_key, tape)
                    runs[kind].append(await _one(client, srv, n, paced, interval))
    labels = {
        "bare": "bare aiohttp receive loop (limit)",
        "ours": "Session read loop -> subscriber",
        "tape": "Session read loop -> subscriber, tape recording",
    }
    metrics = (
        ("fps", "frames/s"),
        ("cpu_ns_per_frame", "client CPU ns/frame"),
        ("busy", "client CPU / wall"),
        ("p50_us", "latency p50 us (paced 1 ms)"),
        ("p99_us", "latency p99 us (paced 1 ms)"),
    )
    for kind in kinds:
        for key, unit in metrics:
            result.row(f"{labels[kind]}: {key}", unit, summary([r[key] for r in runs[kind]]))
    fps = ratio_per_repeat([r["fps"] for r in runs["ours"]], [r["fps"] for r in runs["bare"]])
    cpu = ratio_per_repeat(
        [r["cpu_ns_per_frame"] for r in runs["bare"]],
        [r["cpu_ns_per_frame"] for r in runs["ours"]],
    )
    result.ratio("throughput ours / bare", fps, "wall-clock frames/s, 1.0 = at the limit")
    result.ratio(
        "CPU-bound throughput ours / bare",
        cpu,
        "bare CPU per frame / ours: the throughput ratio if the client were the bottleneck",
    )
    result.ratio(
        "latency p99 ours / bare",
        ratio_per_repeat([r["p99_us"] for r in runs["ours"]], [r["p99_us"] for r in runs["bare"]]),
        "1.0 = no added latency",
    )
    recording = ratio_per_repeat([r["fps"] for r in runs["tape"]], [r["fps"] for r in runs["ours"]])
    result.ratio(
        "throughput ours with a tape / ours",
        recording,
        "wall-clock frames/s while a TapeRecorder records every frame; 1.0 = free",
    )
    result.ratio(
        "CPU-bound throughput ours with a tape / ours",
        ratio_per_repeat(
            [r["cpu_ns_per_frame"] for r in runs["ours"]],
            [r["cpu_ns_per_frame"] for r in runs["tape"]],
        ),
        "ours' CPU per frame / with a tape (the flush's encoding included when it ran)",
    )
    busy = min(r["busy"] for r in runs["bare"] + runs["ours"])
    note = (
        f"least busy client ran at {busy:.0%} CPU, so the wall-clock ratio partly reflects "
        "the server's send rate; the CPU-bound ratio is the stricter figure"
    )
    result.target(
        "e2e throughput >= 0.7x the bare receive loop",
        fps["median"],
        ">= 0.7",
        fps["median"] >= 0.7,
        note,
    )
    result.target(
        "e2e throughput >= 0.7x (CPU-bound, client CPU per frame)",
        cpu["median"],
        ">= 0.7",
        cpu["median"] >= 0.7,
    )
    result.target(
        "e2e throughput with a tape recording >= 0.9x without",
        recording["median"],
        ">= 0.9",
        recording["median"] >= 0.9,
        "rounds interleaved (bare, ours, ours with a tape; order rotated each repeat)",
    )
    result.extra["frames_per_flood"] = n
    result.extra["paced_frames"] = paced


def run(config: Config) -> SuiteResult:
    started = time.perf_counter()
    result = SuiteResult(
        suite="e2e",
        title="e2e: loopback WebSocket, server flood -> subscriber",
        quick=config.quick,
        repeats=config.reps(full=11, quick=2),
        method=(
            "embedded server in a child process floods generation_tick frames (send time in "
            "`seconds`) over one loopback WebSocket; per repeat the bare aiohttp loop and a "
            "signaling-only Session (transport='none': real read loop -> decode -> routing "
            "-> 1 subscriber), and the same Session recording a tape, run "
            "in rotating order: a warm-up flood, a measured flood, then frames paced 1 ms "
            "apart for latency."
        ),
    )
    asyncio.run(_run(config, result))
    result.elapsed_s = time.perf_counter() - started
    return result
