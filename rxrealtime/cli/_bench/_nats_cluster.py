"""The nats suite on a three-node JetStream cluster: 1,000 and 10,000 sessions.

A local 3-node cluster on loopback (:class:`~rxrealtime.nats.LocalNatsCluster`; the
stream gets 3 replicas, as it does by default on a 3-node cluster). For each level a
load generator process (:mod:`._nats_load`: N ticks-only sessions, the real Publisher)
ticks every session once a second, the sessions spread evenly over the second, and one
:class:`~rxrealtime.nats.NatsFleet` in this process aggregates them. Publisher,
aggregator and the three nats-servers are separate processes, so each one's CPU (from
``/proc``) and memory is its own. Per level:

* **events/s**: ticks applied by the aggregator / the time from the first tick to the
  aggregator applying the last (equal to the offered rate while it keeps up);
* **tick -> fleet total**: from the tick's emission on its session (the frame's ``at``,
  the same machine's clock) to the aggregator's totals including it; p50 and p99;
* **CPU** of the publisher, the aggregator and the three nats-servers together, as a
  share of one core and per event; **RSS** of the publisher process and what the
  aggregator's process grew by;
* **storage**: the stream's bytes (one replica's; the cluster keeps 3) added during the
  run, per hour of fleet time at that many sessions.

Then a **flood**: the load generator ticks as fast as the publisher takes them, which is
where this machine saturates; the arithmetic for a larger machine is in the target notes
(per-event CPU of each role, and each single-threaded Python role's one-core ceiling).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

from ._common import Config, SuiteResult, percentile, summary
from ._scale_probe import process_cpu_s, rss_bytes
from ._server import ChildProcess

__all__ = ["measure_cluster"]

LOAD = "rxrealtime.cli._bench._nats_load"
MiB = 2**20
FLOOD_SESSIONS = 1000


async def _until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def ledger_bytes(n: int, ticks: int = 3) -> int:
    """What an aggregator holds for ``n`` sessions: a FleetLedger fed a state and
    ``ticks`` ticks per session, measured with tracemalloc (apart from the timed runs,
    whose process RSS a warm heap blurs)."""
    import tracemalloc

    from rxrealtime.nats import FleetLedger, StateFrame, TickFrame
    from rxrealtime.states import ConnectionState

    tracemalloc.start()
    try:
        ledger = FleetLedger()
        for i in range(n):
            ids = {"worker": "load", "client": f"c{i:012d}", "key": f"load-{i}"}
            ids |= {"sid": f"load-{i}", "model": "lucy-2.6"}
            state = ConnectionState.GENERATING
            ledger.apply(StateFrame(**ids, seq=1, at=time.time(), state=state))
            for t in range(1, ticks + 1):
                ledger.apply(TickFrame(**ids, seq=1 + t, at=time.time(), seconds=t))
        ledger.dirty.clear()  # the checkpoint's to-do list, emptied by each save
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return used


def _servers_cpu_s(cluster: Any) -> float:
    """CPU seconds the cluster's nats-server processes have used so far."""
    return sum(process_cpu_s(node.pid) or 0.0 for node in cluster.nodes if node.pid)


async def run_level(cluster: Any, n: int, seconds: float, mode: str, tag: str) -> dict[str, Any]:
    """One run: ``n`` sessions ticked by a load process for ``seconds`` (``mode``:
    ``paced`` at one tick per session per second, or ``flood``); its figures."""
    import rxrealtime.nats as rtn
    from rxrealtime.nats.frames import EventFrame, TickFrame

    prefix = f"bench-{tag}"
    conn = await rtn.connect(cluster.url, name=f"bench-aggregator-{tag}")
    js = conn.jetstream(timeout=10)
    rss0 = rss_bytes()
    agg = await rtn.fleet(conn, subject_prefix=prefix, durable=None, deliver_new=True)
    lags: list[float] = []
    recording = False
    apply = agg.apply

    def timed_apply(frame: EventFrame) -> Any:
        applied = apply(frame)  # the totals include the tick once this returns
        if recording and type(frame) is TickFrame and not applied.duplicate:
            lags.append(time.time() - frame.at)
        return applied

    agg.apply = timed_apply  # type: ignore[method-assign]
    try:
        args = {"url": cluster.url, "n": n, "prefix": prefix, "worker": "load"}
        async with ChildProcess(LOAD, args, start_timeout_s=180) as child:
            ready = child.ready[1]
            if not await _until(lambda: agg.totals.value.sessions >= n, 60):
                raise RuntimeError(f"the aggregator saw {agg.totals.value.sessions} of {n}")
            before = await js.stream_info(agg.stream)
            billed0 = agg.total_billed_s
            servers0, cpu0, t0 = _servers_cpu_s(cluster), time.process_time(), time.perf_counter()
            recording = True
            _, ran = await child.call("run", seconds, mode, timeout=seconds + 300)
            complete = await _until(lambda: agg.total_billed_s >= billed0 + ran["ticks"], 120)
            t1, cpu1, servers1 = time.perf_counter(), time.process_time(), _servers_cpu_s(cluster)
            recording = False
            after = await js.stream_info(agg.stream)
            agg_rss = rss_bytes()
    finally:
        await agg.close()
        with contextlib.suppress(Exception):  # the next level starts from a light cluster
            await js.delete_stream(agg.stream)
        await conn.close()
    wall, ticks = t1 - t0, ran["ticks"]
    stored = after.state.bytes - before.state.bytes
    ms = [v * 1000 for v in lags]
    return {
        "n": n,
        "mode": mode,
        "ticks": ticks,
        "complete": complete,
        "offered_per_s": ticks / ran["wall_s"],
        "events_per_s": ticks / wall,
        "drain_s": max(0.0, wall - ran["wall_s"]),
        "behind_s": ran["behind_s"],
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms, default=float("nan")),
        "samples": len(ms),
        "publisher_core_pct": 100 * ran["total_cpu_s"] / wall,
        "aggregator_core_pct": 100 * (cpu1 - cpu0) / wall,
        "servers_core_pct": 100 * (servers1 - servers0) / wall,
        "publisher_us_per_event": 1e6 * ran["total_cpu_s"] / ticks,
        "aggregator_us_per_event": 1e6 * (cpu1 - cpu0) / ticks,
        "servers_us_per_event": 1e6 * (servers1 - servers0) / ticks,
        "publisher_rss_mib": ran["max_rss"] / MiB,
        "publisher_sessions_mib": (ready["rss"] - ready["rss_base"]) / MiB,
        "aggregator_rss_mib": agg_rss / MiB,
        "aggregator_growth_mib": (agg_rss - rss0) / MiB,
        "max_buffered": ran["max_buffered"],
        "dropped": ran["dropped"],
        "bytes_per_event": stored / max(1, after.state.messages - before.state.messages),
        "storage_mib_per_hour": stored / ran["wall_s"] * 3600 / MiB,
    }


ROWS = (
    ("events_per_s", "events/s", "events/s"),
    ("p50_ms", "tick -> fleet total p50", "ms"),
    ("p99_ms", "tick -> fleet total p99", "ms"),
    ("publisher_core_pct", "publisher CPU", "% of a core"),
    ("aggregator_core_pct", "aggregator CPU", "% of a core"),
    ("servers_core_pct", "3 nats-servers CPU", "% of a core"),
    ("publisher_us_per_event", "publisher CPU per event", "us"),
    ("aggregator_us_per_event", "aggregator CPU per event", "us"),
    ("servers_us_per_event", "3 nats-servers CPU per event", "us"),
    ("publisher_rss_mib", "publisher process RSS (peak)", "MiB"),
    ("aggregator_rss_mib", "aggregator process RSS (the bench's, earlier levels too)", "MiB"),
    ("aggregator_growth_mib", "aggregator process RSS growth (a warm heap hides some)", "MiB"),
    ("storage_mib_per_hour", "JetStream storage per hour of fleet time (1 replica)", "MiB/h"),
    ("bytes_per_event", "JetStream bytes per event", "bytes"),
    ("dropped", "events dropped by the publisher", "events"),
)


def _add_rows(result: SuiteResult, label: str, runs: list[dict[str, Any]]) -> dict[str, float]:
    medians: dict[str, float] = {}
    for key, name, unit in ROWS:
        stat = summary([r[key] for r in runs])
        medians[key] = stat["median"]
        extra = {"samples": sum(r["samples"] for r in runs)} if key.endswith("_ms") else {}
        result.row(f"{label} | {name}", unit, stat, **extra)
    return medians


def _arithmetic(flood: dict[str, float], at: dict[str, float], n: int) -> str:
    """Where one box saturates, and what a larger one holds, from per-event CPU."""
    pub, agg, srv = (at[f"{k}_us_per_event"] for k in ("publisher", "aggregator", "servers"))
    cores = os.cpu_count() or 1
    box = cores * 1e6 / (pub + agg + srv)
    return (
        f"flood on this {cores}-core box: {flood['events_per_s']:,.0f} events/s "
        f"(= sessions at 1 tick/s). Per event at {n:,} sessions: publisher {pub:.0f} us, "
        f"aggregator {agg:.0f} us, 3 nats-servers {srv:.0f} us; all on {cores} cores: "
        f"{cores} x 1e6 / {pub + agg + srv:.0f} = {box:,.0f} events/s. Apart on a larger "
        f"machine: one aggregator (one Python thread) tops out at 1e6 / {agg:.0f} = "
        f"{1e6 / agg:,.0f} sessions; one publisher process at 1e6 / {pub:.0f} = "
        f"{1e6 / pub:,.0f} (more workers add more); each node stores every event: "
        f"{srv / 3:.0f} us per event per node"
    )


async def measure_cluster(config: Config, result: SuiteResult) -> None:
    """Run the levels and the flood on a local 3-node cluster; add rows and targets."""
    import rxrealtime.nats as rtn

    levels = (50, 200) if config.quick else (1000, 10_000)
    paced_s, flood_s = (1.5, 1.0) if config.quick else (6.0, 4.0)
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in levels}
    floods: list[dict[str, Any]] = []
    async with rtn.local_nats_cluster(3) as cluster:
        for rep in range(result.repeats):
            for n in levels:
                runs[n].append(await run_level(cluster, n, paced_s, "paced", f"c{n}-{rep}"))
            flood_n = min(FLOOD_SESSIONS, levels[-1])
            floods.append(await run_level(cluster, flood_n, flood_s, "flood", f"f-{rep}"))
    medians = {n: _add_rows(result, f"cluster R3 | {n} sessions", runs[n]) for n in levels}
    for n in levels:
        held = ledger_bytes(n)
        result.row(f"cluster R3 | {n} sessions | aggregator ledger (tracemalloc)", "MiB",
                   summary([held / MiB]))  # fmt: skip
        result.extra[f"cluster_ledger_bytes_per_session_{n}"] = held / n
    flood = _add_rows(result, "cluster R3 | flood (saturation)", floods)
    largest, at = levels[-1], medians[levels[-1]]
    note = _arithmetic(flood, at, largest)
    result.extra["cluster"] = {"levels": runs, "flood": floods, "arithmetic": note}
    result.target(
        f"cluster R3, {largest} sessions at 1 tick/s: tick -> fleet total p99 < 1 s (a tick)",
        at["p99_ms"],
        "< 1000 ms",
        at["p99_ms"] < 1000,
        note,
    )
    lost = sum(r["dropped"] + (not r["complete"]) for r in runs[largest])
    result.target(
        f"cluster R3, {largest} sessions: every tick counted, none dropped",
        lost,
        "0",
        lost == 0,
    )
