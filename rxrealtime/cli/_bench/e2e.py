"""e2e: ``generation_tick`` frames over a real loopback WebSocket, socket to subscriber.

The embedded server runs in a child process (:mod:`._server`) and floods frames into the
signaling socket. Four clients take turns, in short interleaved rounds:

* **bare**: an aiohttp ``ws_connect`` and a ``while``/``await ws.receive()`` loop (faster
  than ``async for``, whose ``__anext__`` adds a frame per message) that counts and
  discards frames: the limit of any client built on aiohttp;
* **ours**: a real :class:`~rxrealtime.Session` connected with ``transport="none"``
  (signaling only, no peer connection), so every frame takes the production path:
  the signaling read loop -> decode -> tick lane -> ``generation_ticks`` -> a subscriber.
  The peer connection is left out because its video would compete for the CPU and
  blur the figure; the scale suite measures full sessions;
* **ours with a tape**: the same, while a :class:`~rxrealtime.tapes.TapeRecorder` records
  the session (every frame appended on the hot path, encoded by its flush task);
* **vendor-style**: the way the vendor SDK reads the same socket: ``json.loads``, a
  pydantic discriminated union, a debug log line formatted for every frame (eagerly, as
  an f-string, though debug logging is off) and a list of callbacks per event type.

A round opens each client in turn (the order rotates every round), warms it up, floods
it, and closes it; rounds are short so that the shared machine's slow drifts hit every
client alike, and every ratio is taken within a round, then its median over rounds.
Throughput: frames/s = n / (last frame at the subscriber - first frame sent), and the
client's CPU per frame (process time over the flood): when a client was not busy all
the time, the server's sending was the bottleneck and only the CPU figures tell the
clients apart. Latency, in the first rounds only: frames paced 1 ms apart; the server
reports when each tick value left (``time.monotonic_ns``, one clock for both
processes), the client when it arrived.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from ... import protocol as p
from ...models import DEFAULT_MODEL
from ...session import Session
from ...tapes import TapeRecorder
from ...urls import build_url
from ._common import Config, SuiteResult, percentile, ratio_per_repeat, summary
from ._frames import vendor_adapter
from ._server import ServerProcess

__all__ = ["run"]

MAX_FRAME = 4 * 1024 * 1024
KINDS = ("bare", "ours", "tape", "vendor")
LABELS = {
    "bare": "bare aiohttp receive loop (limit)",
    "ours": "Session read loop -> subscriber",
    "tape": "Session read loop -> subscriber, tape recording",
    "vendor": "vendor-style: json.loads + pydantic union + debug log + callback list",
}
vendor_logger = logging.getLogger("rxrealtime.cli.bench.vendor_style")


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

    def latencies(self, sent: dict[int, int]) -> list[float]:
        """us from send to arrival of each recorded ``(arrival_ns, seconds)``."""
        assert self.record is not None
        return [(t - sent[seconds]) / 1e3 for t, seconds in self.record]


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


class _Vendor(_Bare):
    """The vendor SDK's loop on the same socket: untyped JSON, then pydantic, then
    callbacks by event type; the eagerly formatted debug line is part of its cost."""

    async def _read(self) -> None:
        validate, loads = vendor_adapter().validate_python, json.loads
        box, clock = self.box, time.monotonic_ns

        def on_tick(event: Any) -> None:  # the user's callback, as in ours
            if box.record is not None:
                box.record.append((clock(), event.seconds))
            box.n += 1
            if box.n == box.target:
                box.done.set_result(clock())

        callbacks: dict[str, list[Callable[[Any], None]]] = {"generation_tick": [on_tick]}
        receive, text = self.ws.receive, aiohttp.WSMsgType.TEXT
        while True:
            msg = await receive()
            if msg.type is not text:
                break
            vendor_logger.debug(f"received frame {msg.data}")  # noqa: G004 (its way, on purpose)
            event = validate(loads(msg.data))
            for callback in callbacks.get(event.type, ()):
                callback(event)

    def latencies(self, sent: dict[int, int]) -> list[float]:
        return self.box.latencies(sent)


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

        def on_tick(tick: p.GenerationTick) -> None:  # what the bare loop does inline
            if box.record is not None:
                box.record.append((clock(), tick.seconds))
            box.n += 1
            if box.n == box.target:
                box.done.set_result(clock())

        self.session.generation_ticks.subscribe(on_tick)
        await self.session.connect()

    def latencies(self, sent: dict[int, int]) -> list[float]:
        return self.box.latencies(sent)

    async def close(self) -> None:
        await self.session.disconnect()
        if self.recorder is not None:
            await self.recorder.close()
            assert self.recorder.error is None, self.recorder.error


Client = _Bare | _Ours


async def _one(
    client: Client, srv: ServerProcess, n: int, paced: int, interval: float
) -> dict[str, float]:
    """One client's turn in a round: warm-up, measured flood, then (if ``paced``) latency."""
    await client.open()
    try:
        await srv.call("wait_sessions", 1)
        box = client.box
        box.arm(min(n, 1000), record=False)  # warm-up: caches, allocator, branch predictors
        srv.send("flood", box.target)
        await asyncio.wait_for(box.done, 60)
        await srv.reply()

        box.arm(n, record=False)
        cpu0, wall0 = time.process_time_ns(), time.monotonic_ns()
        srv.send("flood", n)
        last = await asyncio.wait_for(box.done, 120)
        cpu, wall = time.process_time_ns() - cpu0, time.monotonic_ns() - wall0
        _, first, _ = await srv.reply()
        figures = {
            "fps": n / ((last - first) / 1e9),
            "cpu_ns_per_frame": cpu / n,
            "busy": cpu / wall,
        }
        if paced:
            box.arm(paced, record=True)
            srv.send("paced", paced, interval)
            await asyncio.wait_for(box.done, 120)
            _, _, _, sent = await srv.reply()
            lat = client.latencies(dict(sent))
            figures.update(p50_us=percentile(lat, 50), p99_us=percentile(lat, 99))
    finally:
        await client.close()
    return figures


def _shape(config: Config) -> tuple[int, int, int, int]:
    """Rounds, frames per flood, rounds that also measure latency, frames paced in them."""
    rounds = config.reps(full=25, quick=2)
    return (rounds, 2000, 1, 100) if config.quick else (rounds, 12000, 3, 1000)


async def _run(config: Config, result: SuiteResult) -> None:
    rounds, n, latency_rounds, paced = _shape(config)
    async with ServerProcess(tick_interval_s=3600.0) as srv:
        url = build_url(srv.url, "/v1/stream", {"api_key": srv.api_key, "model": DEFAULT_MODEL})
        runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
        with tempfile.TemporaryDirectory() as folder:
            for rnd in range(rounds):
                shift = rnd % len(KINDS)
                for kind in KINDS[shift:] + KINDS[:shift]:
                    client: Client
                    if kind == "bare":
                        client = _Bare(url)
                    elif kind == "vendor":
                        client = _Vendor(url)
                    else:
                        tape = Path(folder) / f"{rnd}.tape.jsonl" if kind == "tape" else None
                        client = _Ours(srv.url, srv.api_key, tape)
                    lat = paced if rnd < latency_rounds else 0
                    runs[kind].append(await _one(client, srv, n, lat, 0.001))
    _report(result, runs, n, paced, latency_rounds)


def _report(
    result: SuiteResult, runs: dict[str, list[dict[str, float]]], n: int, paced: int, lr: int
) -> None:
    metrics = (
        ("fps", "frames/s"),
        ("cpu_ns_per_frame", "client CPU ns/frame"),
        ("busy", "client CPU / wall"),
        ("p50_us", "latency p50 us (paced 1 ms)"),
        ("p99_us", "latency p99 us (paced 1 ms)"),
    )
    for kind in KINDS:
        for key, unit in metrics:
            values = [r[key] for r in runs[kind] if key in r]
            result.row(f"{LABELS[kind]}: {key}", unit, summary(values))

    def cpu_ratio(a: str, b: str) -> dict[str, float]:
        """How many times more frames ``a`` handles per CPU-second than ``b`` (``b``'s CPU
        per frame over ``a``'s, round by round): the throughput ratio if client-bound."""
        return ratio_per_repeat(
            [r["cpu_ns_per_frame"] for r in runs[b]],
            [r["cpu_ns_per_frame"] for r in runs[a]],
        )

    def fps_ratio(a: str, b: str) -> dict[str, float]:
        return ratio_per_repeat([r["fps"] for r in runs[a]], [r["fps"] for r in runs[b]])

    vs_bare, vs_vendor = cpu_ratio("ours", "bare"), cpu_ratio("ours", "vendor")
    result.ratio(
        "CPU-bound throughput ours / bare", vs_bare, "bare CPU per frame / ours (1.0 = limit)"
    )
    result.ratio("throughput ours / bare", fps_ratio("ours", "bare"), "wall-clock frames/s")
    result.ratio(
        "CPU-bound throughput ours / vendor-style",
        vs_vendor,
        "vendor-style CPU per frame / ours: how many times more frames ours handles",
    )
    result.ratio("throughput ours / vendor-style", fps_ratio("ours", "vendor"), "wall-clock")
    tape = cpu_ratio("tape", "ours")
    result.ratio(
        "CPU-bound throughput ours with a tape / ours",
        tape,
        "ours' CPU per frame / with a tape (the flush's encoding included when it ran)",
    )
    result.ratio("throughput ours with a tape / ours", fps_ratio("tape", "ours"), "wall-clock")
    result.ratio(
        "latency p99 ours / bare",
        ratio_per_repeat(
            [r["p99_us"] for r in runs["ours"][:lr]], [r["p99_us"] for r in runs["bare"][:lr]]
        ),
        "1.0 = no added latency",
    )
    busy = min(r["busy"] for r in runs["bare"] + runs["ours"])
    note = f"medians of {len(runs['ours'])} interleaved rounds; least busy client {busy:.0%} CPU"
    result.target(
        "e2e throughput >= 0.8x the bare receive loop (CPU-bound)",
        vs_bare["median"],
        ">= 0.8",
        vs_bare["median"] >= 0.8,
        note,
    )
    result.target(
        "e2e throughput >= 3x the vendor-style loop (CPU-bound)",
        vs_vendor["median"],
        ">= 3",
        vs_vendor["median"] >= 3,
        note,
    )
    result.target(
        "e2e throughput with a tape recording >= 0.9x without (CPU-bound)",
        tape["median"],
        ">= 0.9",
        tape["median"] >= 0.9,
        note,
    )
    result.extra.update(frames_per_flood=n, paced_frames=paced, latency_rounds=lr)


def run(config: Config) -> SuiteResult:
    started = time.perf_counter()
    rounds, n, latency_rounds, paced = _shape(config)
    result = SuiteResult(
        suite="e2e",
        title="e2e: loopback WebSocket, server flood -> subscriber",
        quick=config.quick,
        repeats=rounds,
        method=(
            "embedded server in a child process floods generation_tick frames over one "
            "loopback WebSocket; in each round the bare aiohttp loop, a signaling-only "
            "Session (transport='none': real read loop -> decode -> tick lane -> 1 "
            "subscriber), the same Session recording a tape, and the vendor-style loop "
            f"take turns in rotating order: connect, a warm-up flood, a measured flood of "
            f"{n} frames, close; in the first {latency_rounds} round(s) also {paced} frames "
            "paced 1 ms apart for latency. Ratios are taken within each round."
        ),
    )
    asyncio.run(_run(config, result))
    result.elapsed_s = time.perf_counter() - started
    return result
