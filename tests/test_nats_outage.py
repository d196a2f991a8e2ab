"""Every node of a 3-node JetStream cluster SIGKILLed while a publisher publishes.

No node is reachable, so the worker's events can only wait in the publisher's buffer:
it must stay within ``max_buffer`` however long the outage, drop by its documented
order (superseded ticks first: billing stays intact), say so on each session's
``errors`` while the outage lasts (not only once NATS is back) and in
``publisher.dropped``; once the nodes are back, publishing resumes by itself and the
fleet's billing is exact.
"""

from __future__ import annotations

import asyncio
import json
import time

import conftest_nats  # noqa: F401  (first: skips this module without nats-server)
import pytest
from conftest import wait_until
from conftest_nats import offline_session

import rxrealtime as rt
import rxrealtime.nats as rtn
from rxrealtime import protocol as p

LIMIT, SESSIONS, OUTAGE_TICKS = 300, 3, 400


@pytest.mark.timeout(60)
async def test_with_no_node_reachable_the_buffer_stays_bounded_drops_are_reported_and_publishing_resumes(  # noqa: E501
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with rtn.local_nats_cluster(3) as cluster:
        conn = await rtn.connect(cluster.url, name="outage-worker")
        sessions = [offline_session() for _ in range(SESSIONS)]
        reports: dict[int, list[rtn.FleetPublishError]] = {i: [] for i in range(SESSIONS)}
        for i, s in enumerate(sessions):
            s.errors.subscribe(
                lambda e, i=i: (
                    reports[i].append(e) if isinstance(e, rtn.FleetPublishError) else None
                )
            )
        publisher = await rtn.publish(sessions, conn, worker="outage", max_buffer=LIMIT)
        for i, s in enumerate(sessions):
            s.session_started.emit(rt.SessionInfo(sid=f"sid-{i}", ip="127.0.0.1", port=1))
            s.generation_ticks.emit(p.GenerationTick(seconds=1))
        assert await publisher.flush(10)

        t_kill = time.monotonic()
        await asyncio.gather(*(cluster.kill(node) for node in cluster.nodes))
        await wait_until(lambda: not conn.is_connected, timeout=5)
        most = 0
        for seconds in range(2, OUTAGE_TICKS + 2):  # 3 x 400 ticks over 2 s of outage
            for s in sessions:
                s.generation_ticks.emit(p.GenerationTick(seconds=seconds))
            most = max(most, publisher.buffered)
            if seconds % 20 == 0:
                await asyncio.sleep(0.1)
        last = OUTAGE_TICKS + 1
        assert most <= LIMIT and publisher.buffered <= LIMIT
        assert publisher.dropped >= SESSIONS * OUTAGE_TICKS - LIMIT
        # every session hears of its drops while the outage lasts (at most once a second)
        await wait_until(lambda: all(reports.values()), timeout=3)
        assert not conn.is_connected
        during = {i: len(r) for i, r in reports.items()}
        assert all(1 <= n <= 4 for n in during.values()), during
        # only superseded ticks (and the reports' own error events) went: billing intact
        assert all(e.billing == 0 for r in reports.values() for e in r)

        dropped_during = publisher.dropped
        t_restart = time.monotonic()
        await asyncio.gather(*(cluster.restart(node) for node in cluster.nodes))
        t_ready = time.monotonic()
        assert await publisher.flush(30), "publishing did not resume after the restart"
        t_flushed = time.monotonic()
        for s in sessions:  # ... and goes on
            s.generation_ticks.emit(p.GenerationTick(seconds=last + 1))
        assert await publisher.flush(15)
        viewer = await rtn.fleet(conn, durable=None)  # replays the replicated stream
        expected = {f"sid-{i}": last + 1 for i in range(SESSIONS)}
        await wait_until(lambda: viewer.billed_by_server_session == expected, timeout=20)
        assert viewer.total_billed_s == SESSIONS * (last + 1)
        # what was dropped was all reported, session by session
        await publisher.close()
        reported = sum(e.dropped for r in reports.values() for e in r)
        assert reported == publisher.dropped > 0
        assert all(e.billing == 0 for r in reports.values() for e in r)
        figures = {
            "max_buffer": LIMIT,
            "most_buffered": most,
            "events_during_outage": SESSIONS * OUTAGE_TICKS,
            "dropped_during_outage": dropped_during,
            "reports_during_outage": during,
            "outage_s": round(t_restart - t_kill, 2),
            "cluster_ready_after_restart_s": round(t_ready - t_restart, 2),
            "buffer_drained_after_ready_s": round(t_flushed - t_ready, 2),
            "dropped_in_all": publisher.dropped,
        }
        with capsys.disabled():
            print("\nnats outage (no node reachable):", json.dumps(figures))
        await viewer.close()
        await conn.close()
