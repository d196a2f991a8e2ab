"""The NATS fleet against a real nats-server (JetStream, a free loopback port, a temp
store): worker processes with socket drops, a killed aggregator, NATS going away, the
budget guard, bad input, the example and the benchmark's quick run."""

from __future__ import annotations

import asyncio
import collections
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import conftest_nats  # noqa: F401  (first: skips this module without nats-server)
import pytest
from conftest import wait_until
from conftest_nats import offline_session
from reactivex import operators as ops

import rxrealtime as rt
import rxrealtime.nats as rtn
from rxrealtime import cli
from rxrealtime import operators as rto
from rxrealtime import protocol as p
from rxrealtime.nats.commands import spawn_worker

ROOT = Path(__file__).resolve().parents[1]
S = rt.ConnectionState


@pytest.fixture
async def nats_server() -> AsyncIterator[rtn.LocalNatsServer]:
    async with rtn.local_nats_server() as server:
        yield server


@pytest.fixture
async def nc(nats_server: rtn.LocalNatsServer) -> AsyncIterator[Any]:
    conn = await rtn.connect(nats_server.url)
    yield conn
    await conn.close()


def info(sid: str) -> rt.SessionInfo:
    return rt.SessionInfo(sid=sid, ip="127.0.0.1", port=1, subscribe_token="t")


# -- 3 worker processes x 3 sessions, socket drops, an aggregator killed mid-run -----------


async def _fleet_of_processes() -> dict[str, Any]:
    async with rtn.local_nats_server() as server:
        conn = await rtn.connect(server.url)
        never = await rtn.fleet(conn, durable="never-stops")
        # the aggregator to kill is a real process: `rxrealtime fleet --durable ... --json`
        killed = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rxrealtime.cli",
                "fleet",
                "--nats",
                server.url,
                "--durable",
                "restarts",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        workers = [
            await spawn_worker(
                server.url, f"w{i}", sessions=3, seconds=3.0, tick_interval_s=0.1, drops=2, seed=i
            )
            for i in range(3)
        ]
        await wait_until(lambda: never.total_billed_s >= 60, timeout=20)
        await asyncio.sleep(0.6)  # it has checkpointed (every 0.5 s) by now
        killed.send_signal(signal.SIGKILL)  # mid-run: no final checkpoint
        out, _ = killed.communicate()
        seen_by_killed = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        restarted = await rtn.fleet(conn, durable="restarts")
        restored = len(restarted.members)
        reports = []
        for process in workers:
            stdout, _ = await process.communicate()
            reports.append(json.loads(stdout.decode().strip().splitlines()[-1]))
        expected = {sid: s for r in reports for sid, s in r["billed_by_session"].items()}
        for agg in (never, restarted):
            await wait_until(lambda agg=agg: agg.billed_by_server_session == expected, 15)
        result = {
            "reports": reports,
            "expected": expected,
            "restored": restored,
            "killed_lines": seen_by_killed,
            "never": never.totals.value,
            "never_by_sid": never.billed_by_server_session,
            "restarted": restarted.totals.value,
            "restarted_by_sid": restarted.billed_by_server_session,
            "keys": sorted(never.billed_by_session),
            "duplicates": never.counters["duplicates"],
        }
        for agg in (never, restarted):
            await agg.close()
        await conn.close()
        return result


@pytest.fixture(scope="module")
def processes() -> dict[str, Any]:
    return asyncio.run(_fleet_of_processes())


@pytest.mark.timeout(90)
def test_fleet_total_equals_what_the_servers_billed_exactly(processes: dict[str, Any]) -> None:
    reports, expected = processes["reports"], processes["expected"]
    assert sum(r["socket_drops"] for r in reports) >= 3  # sessions really reconnected
    assert len(expected) > 9  # more server sessions than client sessions
    assert all(r["dropped"] == 0 for r in reports)
    assert processes["never_by_sid"] == expected  # per server session, exactly
    totals = processes["never"]
    assert totals.billed_s == sum(r["billed_s"] for r in reports) == sum(expected.values())
    assert totals.sessions == 9 and totals.generating == 0
    # keyed by each client session's first server session id, as rt.Fleet keys them
    assert processes["keys"] == sorted(k for r in reports for k in r["keys"])


@pytest.mark.timeout(90)
def test_a_killed_aggregator_restarts_and_ends_with_the_same_totals(processes: dict) -> None:
    lines = processes["killed_lines"]
    killed_saw = [line["billed_s"] for line in lines if line["event"] == "totals"]
    final = processes["never"].billed_s
    assert killed_saw and 0 < max(killed_saw) < final  # it was killed mid-run
    assert processes["restored"] > 0  # the restart resumed from its checkpoint
    assert processes["restarted_by_sid"] == processes["expected"]
    assert processes["restarted"] == processes["never"]


# -- NATS goes away for 2 s ------------------------------------------------------------------


async def test_nats_down_for_2_s_loses_nothing_and_counts_nothing_twice(
    nats_server: rtn.LocalNatsServer,
) -> None:
    pub_conn = await rtn.connect(nats_server.url)
    agg_conn = await rtn.connect(nats_server.url)
    sessions = [offline_session() for _ in range(4)]
    publisher = await rtn.publish(sessions, pub_conn, worker="w1")
    agg = await rtn.fleet(agg_conn, durable="outage", checkpoint_interval_s=0.2)
    received: collections.Counter[tuple[str, int]] = collections.Counter()
    agg.ticks.subscribe(lambda k: received.update([(k.key, k.value.seconds)]))
    errors: list[rt.Keyed[rt.RealtimeError]] = []
    agg.errors.subscribe(errors.append)
    sent: collections.Counter[tuple[str, int]] = collections.Counter()
    expected: dict[str, int] = {}

    async def feed(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for i, s in enumerate(sessions):
                n = feed.count  # type: ignore[attr-defined]
                if n % 12 == 0:  # a reconnect: a new server session, ticks from 1 again
                    s.session_started.emit(info(f"sid-{i}-{n}"))
                    s.connection_changes.emit(S.GENERATING if n % 24 else S.RECONNECTING)
                sid = f"sid-{i}-{n - n % 12}"
                s.generation_ticks.emit(p.GenerationTick(seconds=n % 12 + 1))
                key = publisher.key_of(s)
                assert key is not None
                sent[(key, n % 12 + 1)] += 1
                expected[sid] = n % 12 + 1
                if n == 30:
                    s.errors.emit(rt.ServerError(f"boom {i}"))
            feed.count += 1  # type: ignore[attr-defined]
            await asyncio.sleep(0.02)

    feed.count = 0  # type: ignore[attr-defined]
    await feed(0.5)
    await nats_server.stop()
    await feed(2.0)  # NATS is down: everything waits in the publisher's buffer
    assert publisher.buffered > 0
    await nats_server.start()  # same port, same store
    await feed(0.5)
    assert await publisher.flush(timeout_s=15)
    await wait_until(lambda: agg.billed_by_server_session == expected, timeout=15)
    assert publisher.dropped == 0
    assert received == sent  # every tick, each exactly once on the fleet's stream
    assert sorted(str(e.value) for e in errors) == [
        f"ServerError: boom {i} (worker w1)" for i in range(4)
    ]
    assert agg.total_billed_s == sum(expected.values())
    await publisher.close()
    await agg.close()
    await pub_conn.close()
    await agg_conn.close()


async def test_a_full_buffer_drops_superseded_ticks_first_and_says_so(
    nats_server: rtn.LocalNatsServer, nc: Any
) -> None:
    session = offline_session()
    publisher = await rtn.publish(session, nc, worker="w1", max_buffer=5)
    lost: list[rt.RealtimeError] = []
    session.errors.subscribe(lambda e: isinstance(e, rtn.FleetPublishError) and lost.append(e))
    session.session_started.emit(info("sid-1"))
    await publisher.flush(5)
    await nats_server.stop()
    for seconds in range(1, 21):
        session.generation_ticks.emit(p.GenerationTick(seconds=seconds))
    await nats_server.start()
    assert await publisher.flush(timeout_s=15)
    agg = await rtn.fleet(nc, durable=None)
    await wait_until(lambda: agg.total_billed_s == 20)  # the newest tick carried the billing
    # the session heard of the 15 while NATS was away; that report's own error event then
    # took a place in the full buffer (one more superseded tick), heard of once NATS was back
    during, after = lost
    assert (during.dropped, during.superseded, during.billing) == (15, 15, 0)  # type: ignore[attr-defined]
    assert (after.dropped, after.superseded, after.billing) == (1, 1, 0)  # type: ignore[attr-defined]
    assert publisher.dropped == 16
    assert "billing intact" in str(during)
    await publisher.close()
    await agg.close()


async def test_a_server_session_that_ends_before_its_first_tick_is_billed_at_0_by_both(
    nc: Any,
) -> None:
    # a drop just before a worker stops: the session reconnects, its new server session
    # ends before its first tick; the server lists it at 0 s and so must the fleet
    agg = await rtn.fleet(nc, durable=None, deliver_new=True)
    async with rt.serve_embedded(tick_interval_s=0.1) as server:
        fast = rt.ReconnectPolicy(initial_delay_s=0.05, max_delay_s=0.2)
        session = rt.Session(server.url, api_key=server.api_key, model="lucy-2.6", reconnect=fast)
        publisher = await rtn.publish(session, nc, worker="w1")
        sids: list[str] = []
        session.session_started.subscribe(lambda i: sids.append(i.sid))
        await session.connect(prompt="zero")
        await wait_until(lambda: agg.total_billed_s >= 2)
        server.drop_session(sids[-1])
        await wait_until(lambda: len(sids) == 2, timeout=10)
        await session.disconnect()  # before the new server session's first tick
        await publisher.close()
    assert server.billed_by_session[sids[1]] == 0
    await wait_until(lambda: agg.billed_by_server_session == server.billed_by_session)
    await agg.close()


# -- the budget guard --------------------------------------------------------------------------


async def test_fleet_budget_stops_every_session_within_one_tick_interval(nc: Any) -> None:
    tick_s, budget = 0.1, 20
    async with rt.serve_embedded(tick_interval_s=tick_s) as server:
        sessions = [
            rt.Session(server.url, api_key=server.api_key, model="lucy-2.6") for _ in range(3)
        ]
        publisher = await rtn.publish(sessions, nc, worker="gpu-1")
        obeyer = await rtn.obey(sessions, nc, publisher=publisher)
        tick_times: dict[int, list[float]] = {id(s): [] for s in sessions}
        for s in sessions:
            s.generation_ticks.subscribe(lambda _, s=s: tick_times[id(s)].append(time.time()))
        received_at: list[float] = []
        obeyer.commands.subscribe(lambda _: received_at.append(time.time()))
        stopped: list[str] = []
        obeyer.stopped.subscribe(lambda k: stopped.append(k.key))
        agg = await rtn.fleet(
            nc, durable=None, deliver_new=True, budget_s=budget, rate_per_second="0.01"
        )
        commands: list[rtn.StopCommand] = []
        agg.commands.subscribe(commands.append)
        # a session still connecting when the budget is crossed is stopped too (its
        # connect() then raises): the guard stops everything
        await asyncio.gather(
            *(s.connect(prompt="budget") for s in sessions), return_exceptions=True
        )
        keys = sorted(publisher.key_of(s) or "" for s in sessions)
        await wait_until(lambda: all(s.closed for s in sessions), timeout=15)
        crossed = agg.budget_crossed_at
        assert crossed is not None and commands[0].fleet_wide
        assert commands[0].billed_s is not None and commands[0].billed_s >= budget
        assert received_at and received_at[0] - crossed < tick_s  # the stop reached the worker
        for s in sessions:  # ... and no session was billed more than one tick after it
            assert sum(t > crossed for t in tick_times[id(s)]) <= 1
        assert sorted(stopped) == keys
        await publisher.close()
        await obeyer.close()
    await wait_until(lambda: agg.billed_by_server_session == server.billed_by_session)
    assert agg.totals.value.generating == 0 and agg.totals.value.cost == Decimal("0.01") * sum(
        server.billed_by_session.values()
    )
    await agg.close()


# -- bad input -----------------------------------------------------------------------------------


async def test_a_malformed_message_is_reported_and_skipped(nc: Any) -> None:
    agg = await rtn.fleet(nc, durable="malformed")
    errors: list[rt.Keyed[rt.RealtimeError]] = []
    agg.errors.subscribe(errors.append)
    js = nc.jetstream()
    await js.publish("rxrealtime.w1.abc.tick", b"\xc1 not msgpack")
    await js.publish("rxrealtime.w1.abc.tick", b'{"json": "instead"}')
    session = offline_session()
    publisher = await rtn.publish(session, nc, worker="w1")
    session.session_started.emit(info("abc"))
    session.generation_ticks.emit(p.GenerationTick(seconds=3))
    await wait_until(lambda: agg.total_billed_s == 3)  # the valid frame after them counts
    assert agg.counters["malformed"] == 2
    assert [(e.key, type(e.value)) for e in errors] == [("abc", rt.ProtocolError)] * 2
    assert "malformed fleet frame" in str(errors[0].value)
    # a malformed stop command is ignored by workers and the session goes on
    obeyer = await rtn.obey(session, nc, publisher=publisher)
    await nc.publish("rxrealtime.control.fleet", b"{not json")
    await wait_until(lambda: obeyer.malformed == 1)
    await publisher.close()
    await obeyer.close()
    await agg.close()


async def test_a_wrong_nats_url_fails_at_the_call_with_a_clear_error() -> None:
    started = time.monotonic()
    with pytest.raises(
        rtn.FleetConnectError,
        match=r"cannot connect to NATS at nats://127\.0\.0"
        r"\.1:1 \(ConnectionRefusedError.*is nats-server running there",
    ):
        await rtn.connect("nats://127.0.0.1:1")
    assert time.monotonic() - started < 1.5  # refused: fails fast, not at the timeout
    for bad in ("http://127.0.0.1:4222", "127.0.0.1:4222", "nats://:4222"):
        with pytest.raises(rt.ConfigError, match="invalid NATS URL"):
            await rtn.connect(bad)
    with pytest.raises(rtn.FleetConnectError, match=r":\*\*\*@"):
        await rtn.connect("nats://user:hunter22@127.0.0.1:1", connect_timeout_s=0.3)


async def test_jetstream_off_and_bad_names_fail_at_the_call() -> None:
    async with rtn.LocalNatsServer(jetstream=False) as plain:
        conn = await rtn.connect(plain.url)
        with pytest.raises(rtn.FleetConnectError, match="start nats-server with -js"):
            await rtn.publish(offline_session(), conn, worker="w1")
        with pytest.raises(rt.ConfigError, match="worker must be"):
            await rtn.publish(offline_session(), conn, worker="gpu.box")
        with pytest.raises(rt.ConfigError, match="may not be 'control'"):
            await rtn.publish(offline_session(), conn, worker="control")
        await conn.close()


def test_cli_fleet_and_demo_report_an_unreachable_nats_in_one_line(capsys) -> None:
    assert cli.main(["fleet", "--nats", "nats://127.0.0.1:1"]) == 1
    assert cli.main(["demo", "--workers", "2", "--nats", "nats://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("cannot connect to NATS at nats://127.0.0.1:1" in e for e in err)


# -- same streams and operators as rt.Fleet ---------------------------------------------------


async def test_the_nats_fleet_matches_the_in_process_fleet_and_its_operators(nc: Any) -> None:
    sessions = [offline_session() for _ in range(2)]
    local = rt.Fleet(sessions, rate_per_second="0.5")
    publisher = await rtn.publish(sessions, nc, worker="w1")
    agg = await rtn.fleet(nc, durable=None, rate_per_second="0.5")
    local_billed: list[tuple[str, int]] = []
    remote_billed: list[tuple[str, int]] = []
    local.billed.subscribe(lambda k: local_billed.append((k.key, k.value)))
    agg.billed.subscribe(lambda k: remote_billed.append((k.key, k.value)))
    alerts: list[rto.BudgetAlert] = []
    agg.totals.pipe(ops.map(lambda t: t.billed_s), rto.budget_alert(limit_s=10)).subscribe(
        alerts.append
    )
    costs: list[Decimal] = []
    agg.totals.pipe(ops.map(lambda t: t.billed_s), rto.cost("0.5")).subscribe(costs.append)
    for i, s in enumerate(sessions):
        s.connection_changes.emit(S.CONNECTING)
        s.session_started.emit(info(f"first-{i}"))
        s.connection_changes.emit(S.GENERATING)
        for n in (1, 2, 2, 3):  # a duplicate
            s.generation_ticks.emit(p.GenerationTick(seconds=n))
        s.session_started.emit(info(f"second-{i}"))  # a reconnect
        for n in (1, 2):
            s.generation_ticks.emit(p.GenerationTick(seconds=n))
    await wait_until(lambda: agg.totals.value == local.totals.value)
    assert agg.totals.value == rt.FleetTotals(
        billed_s=10, sessions=2, generating=2, cost=Decimal("5.0")
    )
    assert agg.billed_by_session == local.billed_by_session == {"first-0": 5, "first-1": 5}
    assert remote_billed == local_billed
    assert [a.threshold for a in alerts] == [0.5, 0.8, 1.0]
    assert costs[-1] == Decimal("5.0")
    await publisher.close()
    await agg.close()
    local.close()


# -- the example and the benchmark ------------------------------------------------------------


@pytest.mark.timeout(60)
def test_example_fleet_nats_runs_a_multi_process_fleet() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "fleet_nats.py")],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "fleet total" in out.stdout and "exact" in out.stdout, out.stdout[-2000:]


@pytest.mark.timeout(60)
def test_bench_nats_quick_runs_and_reports_beside_the_in_process_fleet(tmp_path: Path) -> None:
    from rxrealtime.cli.bench import Config, run_suites

    (doc,) = run_suites(["nats"], Config(quick=True, repeats=1), tmp_path, log=print)
    assert (tmp_path / "nats.json").is_file()
    names = {row["name"] for row in doc["rows"]}
    for contender in ("nats", "in-process Fleet"):
        assert any(contender in n and "events/s" in n for n in names), names
    assert any("p99" in n for n in names)
    # ... and on a 3-node cluster, with the load generator in its own process
    assert any(n.startswith("cluster R3 |") and n.endswith("| events/s") for n in names), names
    assert any("flood (saturation)" in n for n in names), names
    for row in doc["rows"]:
        if "growth" in row["name"]:  # a warm heap may even shrink
            continue
        if row["unit"] == "events":  # drops: 0 is the hope
            assert row["median"] >= 0, row
        else:
            assert row["median"] > 0, row
    cluster_targets = [t for t in doc["targets"] if t["target"].startswith("cluster R3")]
    assert len(cluster_targets) == 2 and all(t["met"] for t in cluster_targets), cluster_targets
