"""Bounded soak: 20 sessions on one server, fast ticks, random socket drops; every tick
the server billed is seen by the client that paid for it."""

from __future__ import annotations

import asyncio
import random
import time

from conftest import wait_until
from test_reliability import Billing

import rxrealtime as rt
from rxrealtime import operators as rto

SESSIONS = 20
DURATION_S = 12.0


async def test_twenty_sessions_with_random_drops_lose_no_tick() -> None:
    rng = random.Random(20261124)
    async with rt.serve_embedded(tick_interval_s=0.05) as server:
        retry = rt.ReconnectPolicy(initial_delay_s=0.05, max_delay_s=0.5, max_attempts=10)
        sessions = [
            rt.Session(server.url, api_key=server.api_key, reconnect=retry, stats_interval_s=None)
            for _ in range(SESSIONS)
        ]
        billings = [Billing(s) for s in sessions]
        operator_totals = [0] * SESSIONS
        for i, s in enumerate(sessions):
            s.generation_ticks.pipe(rto.billed_seconds(resets=s.session_started)).subscribe(
                lambda total, i=i: operator_totals.__setitem__(i, total)
            )
        errors: list[rt.RealtimeError] = []
        for s in sessions:
            s.errors.subscribe(errors.append)
        await asyncio.gather(
            *(s.connect(local_track=rt.media.SyntheticTrack(64, 48, fps=5)) for s in sessions)
        )
        await wait_until(
            lambda: all(s.state is rt.ConnectionState.GENERATING for s in sessions), 30
        )

        drops = 0
        deadline = time.monotonic() + DURATION_S
        while time.monotonic() < deadline:  # bounded in time and in count
            await asyncio.sleep(rng.uniform(0.2, 0.6))
            victim = rng.choice(sessions)
            if (
                victim.state is rt.ConnectionState.GENERATING
                and victim.session_id in server.sessions
            ):
                server.drop_session(victim.session_id)
                drops += 1

        await wait_until(lambda: len(server.billed_by_session) == drops, 10)  # all drops done

        def all_back() -> bool:
            generating = all(s.state is rt.ConnectionState.GENERATING for s in sessions)
            return generating and {s.session_id for s in sessions} == set(server.sessions)

        await wait_until(all_back, 30)
        await asyncio.gather(*(s.disconnect() for s in sessions))
        await wait_until(lambda: not server.sessions, 10)

    lost = sum(b.lost(server) for b in billings)
    billed_by_server = sum(server.billed_by_session.values())
    billed_by_clients = sum(b.total for b in billings)
    assert drops >= 10
    assert server.counters["socket_drops"] == drops
    assert lost == 0
    assert operator_totals == [b.total for b in billings]  # billed_seconds() is continuous
    assert billed_by_clients == billed_by_server > SESSIONS * 20
    # no server session billed a second that no client saw ticking
    seen = set().union(*(b.last for b in billings))
    assert {sid for sid, billed in server.billed_by_session.items() if billed} == seen
    assert all(b.order for b in billings)  # every client was billed and saw it
    assert {type(e) for e in errors} == {rt.ConnectionLost}
    assert len(errors) == drops
