"""nats: a fleet through a local JetStream, beside the in-process ``rt.Fleet``.

Simulated sessions (real, never-connected ``Session`` objects whose streams the bench
feeds directly: no WebRTC) publish through one :class:`~rxrealtime.nats.Publisher`
into a local nats-server with JetStream (file store), and one
:class:`~rxrealtime.nats.NatsFleet` aggregates them. At 100 and 1,000 sessions:

* **events/s**: ticks fed as fast as the publisher takes them (it is never allowed more
  than 4,096 events ahead), until the aggregator has applied the last one;
* **tick -> fleet total**: ticks paced at 1,000/s over all sessions, each timed from its
  emission on the session (a tick's arrival at a worker) to the moment the aggregator's
  fleet total includes it; p50 and p99.

The in-process ``rt.Fleet`` gets the same sessions and the same ticks. Publisher and
aggregator share this process and its event loop (two NATS connections), so each
figure includes both ends' Python work on one core; nats-server runs beside them.

Then the same path on a local three-node cluster (stream with 3 replicas), at 1,000 and
10,000 ticks-only sessions ticking at the service's rate, publisher in a process of its
own, and a flood that finds where this machine saturates (:mod:`._nats_cluster`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from ... import protocol as p
from ...fleet import Fleet, FleetTotals
from ...models import DEFAULT_MODEL
from ...session import Session
from ...states import SessionInfo
from ...streams import StateStream
from ._common import Config, SuiteResult, percentile, ratio_per_repeat, summary
from ._nats_cluster import measure_cluster

__all__ = ["run"]

AHEAD = 4096
PACED_RATE = 1000.0


def _sessions(n: int) -> list[Session]:
    return [Session("ws://127.0.0.1:9", api_key="bench-key", model=DEFAULT_MODEL) for _ in range(n)]


def _start(sessions: list[Session], tag: str) -> None:
    for i, s in enumerate(sessions):
        s.session_started.emit(SessionInfo(sid=f"{tag}-{i}", ip="127.0.0.1", port=1))


def _tick_all(sessions: list[Session], seconds: int) -> None:
    tick = p.GenerationTick(seconds=seconds)
    for s in sessions:
        s.generation_ticks.emit(tick)


@contextlib.asynccontextmanager
async def _pipeline(url: str, n: int, tag: str) -> AsyncIterator[tuple[list[Session], Any, Any]]:
    """``n`` started sessions -> a publisher -> JetStream -> an aggregator (a viewer)."""
    import rxrealtime.nats as rtn

    pub_conn, agg_conn = await rtn.connect(url), await rtn.connect(url)
    sessions = _sessions(n)
    agg = await rtn.fleet(agg_conn, subject_prefix="bench", durable=None, deliver_new=True)
    publisher = await rtn.publish(sessions, pub_conn, subject_prefix="bench", worker="bench")
    _start(sessions, tag)
    await publisher.flush(30)
    try:
        yield sessions, publisher, agg
    finally:
        await publisher.close()
        await agg.close()
        await pub_conn.close()
        await agg_conn.close()


async def _nats_throughput(url: str, n: int, events: int, tag: str) -> float:
    async with _pipeline(url, n, tag) as (sessions, publisher, agg):
        base = agg.counters["frames"]
        rounds = max(1, events // n)
        started = time.perf_counter()
        for r in range(1, rounds + 1):
            _tick_all(sessions, r)
            while publisher.buffered > AHEAD:
                await asyncio.sleep(0.0005)
        while agg.counters["frames"] < base + rounds * n:
            await asyncio.sleep(0.0005)
        elapsed = time.perf_counter() - started
        assert agg.total_billed_s == rounds * n, "the aggregator must have every tick"
    return rounds * n / elapsed


def _fleet_throughput(n: int, events: int, tag: str) -> float:
    sessions = _sessions(n)
    fleet = Fleet(sessions)
    _start(sessions, tag)
    rounds = max(1, events // n)
    started = time.perf_counter()
    for r in range(1, rounds + 1):
        _tick_all(sessions, r)
    elapsed = time.perf_counter() - started
    assert fleet.total_billed_s == rounds * n
    fleet.close()
    return rounds * n / elapsed


async def _paced(sessions: list[Session], seconds: float, emitted: list[float]) -> None:
    """Tick every session in turn, ``PACED_RATE`` ticks a second in all, for ``seconds``;
    ``emitted`` gets each tick's emission time (every tick bills exactly 1 s)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    count = [0] * len(sessions)
    sent = 0
    while loop.time() - start < seconds:
        due = int((loop.time() - start) * PACED_RATE)
        while sent < due:
            i = sent % len(sessions)
            count[i] += 1
            emitted.append(time.perf_counter())
            sessions[i].generation_ticks.emit(p.GenerationTick(seconds=count[i]))
            sent += 1
        await asyncio.sleep(0.002)


def _probe(totals: StateStream[FleetTotals], emitted: list[float], latencies: list[float]) -> None:
    """Time each tick to the fleet total that includes it: the total's N-th new second is
    the N-th tick emitted (ticks of one publisher arrive in order)."""
    base = counted = totals.value.billed_s

    def on_totals(t: FleetTotals) -> None:
        nonlocal counted
        now = time.perf_counter()
        for k in range(counted - base, t.billed_s - base):
            latencies.append(now - emitted[k])
        counted = max(counted, t.billed_s)

    totals.subscribe(on_totals)


async def _nats_latency(url: str, n: int, seconds: float, tag: str) -> list[float]:
    async with _pipeline(url, n, tag) as (sessions, publisher, agg):
        emitted: list[float] = []
        latencies: list[float] = []
        _probe(agg.totals, emitted, latencies)
        await _paced(sessions, seconds, emitted)
        await publisher.flush(30)
        deadline = time.monotonic() + 10
        while len(latencies) < len(emitted) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
    return latencies


async def _fleet_latency(n: int, seconds: float, tag: str) -> list[float]:
    sessions = _sessions(n)
    fleet = Fleet(sessions)
    _start(sessions, tag)
    emitted: list[float] = []
    latencies: list[float] = []
    _probe(fleet.totals, emitted, latencies)
    await _paced(sessions, seconds, emitted)
    fleet.close()
    return latencies


async def _measure(config: Config, result: SuiteResult) -> None:
    import rxrealtime.nats as rtn

    levels = (5, 20) if config.quick else (100, 1000)
    events = 500 if config.quick else 20_000
    paced_s = 0.3 if config.quick else 3.0
    async with rtn.local_nats_server() as server:
        for n in levels:
            rates: dict[str, list[float]] = {"nats": [], "in-process Fleet": []}
            lat: dict[str, list[float]] = {"nats": [], "in-process Fleet": []}
            p50: dict[str, list[float]] = {"nats": [], "in-process Fleet": []}
            p99: dict[str, list[float]] = {"nats": [], "in-process Fleet": []}
            for rep in range(result.repeats):
                tag = f"{n}-{rep}"
                rates["nats"].append(await _nats_throughput(server.url, n, events, f"t{tag}"))
                rates["in-process Fleet"].append(_fleet_throughput(n, events, f"f{tag}"))
                for name, values in (
                    ("nats", await _nats_latency(server.url, n, paced_s, f"l{tag}")),
                    ("in-process Fleet", await _fleet_latency(n, paced_s, f"m{tag}")),
                ):
                    ms = [v * 1000 for v in values]
                    lat[name] += ms
                    p50[name].append(percentile(ms, 50))
                    p99[name].append(percentile(ms, 99))
            for name in rates:
                result.row(f"{n} sessions | {name} | events/s", "events/s", summary(rates[name]))
                result.row(
                    f"{n} sessions | {name} | tick -> fleet total p50",
                    "ms",
                    summary(p50[name]),
                    samples=len(lat[name]),
                )
                result.row(
                    f"{n} sessions | {name} | tick -> fleet total p99",
                    "ms",
                    summary(p99[name]),
                    samples=len(lat[name]),
                )
            result.ratio(
                f"{n} sessions | in-process Fleet / nats events/s",
                ratio_per_repeat(rates["in-process Fleet"], rates["nats"]),
                "how many times more ticks per second one process handles than the NATS path",
            )
            result.extra[f"{n}_sessions_nats_p99_ms"] = summary(p99["nats"])["median"]
    largest = levels[-1]
    value = result.extra[f"{largest}_sessions_nats_p99_ms"]
    result.target(
        f"tick -> fleet total p99 at {largest} sessions < 100 ms (one fast tick)",
        value,
        "< 100 ms",
        value < 100,
    )
    await measure_cluster(config, result)


def run(config: Config) -> SuiteResult:
    started = time.perf_counter()
    result = SuiteResult(
        suite="nats",
        title=(
            "nats: a fleet through local JetStream (one server, a 3-node cluster) vs the "
            "in-process Fleet"
        ),
        quick=config.quick,
        repeats=config.reps(full=3, quick=1),
        method=(
            "Simulated sessions (never-connected Session objects fed directly, no WebRTC) -> "
            "one Publisher -> local nats-server, JetStream file store -> one NatsFleet "
            "(replaying viewer consumer), publisher and aggregator on one event loop. "
            "events/s: ticks fed with back-pressure (<= 4,096 ahead) until the aggregator "
            "applied the last; latency: 1,000 ticks/s in all, from the tick's emission on "
            "its session to the totals update that includes it. The in-process rt.Fleet gets the "
            "same sessions and ticks. Cluster R3: a local 3-node cluster, stream with 3 "
            "replicas; a load process of N ticks-only sessions (real Publisher) ticking each "
            "once a second, spread over the second, for 6 s; the aggregator in this process; "
            "CPU of each process from /proc; storage from the stream's bytes (one replica). "
            "Flood: 1,000 sessions ticked as fast as the publisher takes them."
        ),
    )
    asyncio.run(_measure(config, result))
    result.elapsed_s = time.perf_counter() - started
    return result
