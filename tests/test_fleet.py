"""Fleet: keyed streams and totals, fed by real sessions (unit: streams fed directly)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from conftest import wait_until

import rxrealtime as rt
from rxrealtime import protocol as p

S = rt.ConnectionState


def info(sid: str) -> rt.SessionInfo:
    return rt.SessionInfo(sid=sid, ip="127.0.0.1", port=1, subscribe_token="t")


def offline_session(model: str = "lucy-2.6", speed: str | None = None) -> rt.Session:
    # A real Session, never connected: its hot streams exist from construction, so a
    # test can emit what a server session would produce, without a network.
    return rt.Session("ws://127.0.0.1:9", api_key="rt_secret_key", model=model, speed=speed)


def test_fleet_keys_by_first_session_id_and_keeps_it_across_reconnects() -> None:
    session = offline_session()
    fleet = rt.Fleet()
    billed: list[rt.Keyed[int]] = []
    fleet.billed.subscribe(billed.append)
    assert fleet.add(session) == "pending-1"
    session.session_started.emit(info("sid-a"))
    for s in (1, 2, 3):
        session.generation_ticks.emit(p.GenerationTick(s))
    session.session_started.emit(info("sid-b"))  # reconnect: new server session
    for s in (1, 1, 2):  # including a duplicate
        session.generation_ticks.emit(p.GenerationTick(s))
    assert [(k.key, k.model, k.value) for k in billed] == [
        ("sid-a", "lucy-2.6", 1), ("sid-a", "lucy-2.6", 2), ("sid-a", "lucy-2.6", 3),
        ("sid-a", "lucy-2.6", 4), ("sid-a", "lucy-2.6", 4), ("sid-a", "lucy-2.6", 5),
    ]  # fmt: skip
    assert fleet.billed_by_session == {"sid-a": 5}
    assert fleet.key_of(session) == "sid-a"


def test_fleet_totals_sum_sessions_and_price_each_model() -> None:
    a, b = offline_session("lucy-2.6"), offline_session("lucy-2.1")
    fleet = rt.Fleet([a, b], prices={"lucy-2.6": "0.01", "lucy-2.1": "0.05"})
    deltas: list[tuple[str, int]] = []
    fleet.billed_deltas.subscribe(lambda k: deltas.append((k.key, k.value)))
    a.session_started.emit(info("a"))
    b.session_started.emit(info("b"))
    a.generation_ticks.emit(p.GenerationTick(10))
    b.generation_ticks.emit(p.GenerationTick(4))
    b.generation_ticks.emit(p.GenerationTick(4))
    assert deltas == [("a", 10), ("b", 4)]
    assert fleet.totals.value == rt.FleetTotals(
        billed_s=14, sessions=2, generating=0, cost=Decimal("0.30")
    )
    fleet.remove(b)
    assert fleet.totals.value.billed_s == 10 and fleet.totals.value.sessions == 1


def test_fleet_rejects_a_session_whose_model_has_no_price() -> None:
    fleet = rt.Fleet(prices={"lucy-2.1": 1})
    with pytest.raises(rt.ConfigError, match=r"no price for model 'lucy-2\.6'"):
        fleet.add(offline_session())


def test_fleet_prices_each_session_at_its_speed_tier() -> None:
    fast, slow = offline_session(speed="fast"), offline_session()
    rt.models.reset_warnings()
    with pytest.warns(UserWarning, match="does not offer speed='fast'"):
        ignored = offline_session("lucy-2.1", speed="fast")  # no fast tier: billed standard
    vton = offline_session("lucy-vton-3.6", speed="fast")
    prices = {
        "lucy-2.6": "0.01",
        "lucy-2.1": "0.01",
        "lucy-vton-3.6": "1",
        "lucy-vton-3.6:fast": "0.05",
    }
    fleet = rt.Fleet([fast, slow, ignored, vton], prices=prices)
    billed: list[rt.Keyed[int]] = []
    fleet.billed_deltas.subscribe(billed.append)
    for i, s in enumerate((fast, slow, ignored, vton)):
        s.session_started.emit(info(f"s{i}"))
        s.generation_ticks.emit(p.GenerationTick(10))
    assert [(k.key, k.tier) for k in billed] == [
        ("s0", "fast"), ("s1", "standard"), ("s2", "standard"), ("s3", "fast"),
    ]  # fmt: skip
    # 10 s at 2 x 0.01, 10 s at 0.01, 10 s at 0.01, 10 s at the table's own 0.05
    assert fleet.totals.value.cost == Decimal("0.20") + Decimal("0.10") * 2 + Decimal("0.50")
    assert fleet.price_of("lucy-2.6", "fast") == Decimal("0.02")
    assert fleet.price_of("lucy-2.6") == Decimal("0.01")
    flat = rt.Fleet([offline_session(speed="fast")], rate_per_second="0.5")
    assert flat.price_of("any", "fast") == 1 and flat.price_of("any") == Decimal("0.5")


def test_fleet_keys_errors_and_completes_on_close() -> None:
    session = offline_session()
    fleet = rt.Fleet()
    errors: list[rt.Keyed[rt.RealtimeError]] = []
    done: list[bool] = []
    fleet.errors.subscribe(errors.append, on_completed=lambda: done.append(True))
    fleet.add(session, key="camera-1")
    session.errors.emit(rt.ServerError("boom"))
    fleet.close()
    session.errors.emit(rt.ServerError("after close"))
    assert errors == [rt.Keyed("camera-1", "lucy-2.6", rt.ServerError("boom"))]
    assert done == [True]


async def test_fleet_of_live_sessions_totals_billing_across_a_reconnect(
    server: rt.EmbeddedServer,
) -> None:
    fast = rt.ReconnectPolicy(initial_delay_s=0.05, max_delay_s=0.1)
    sessions = [
        rt.Session(server.url, api_key=server.api_key, model="lucy-2.6", reconnect=fast)
        for _ in range(2)
    ]
    fleet = rt.Fleet(sessions, rate_per_second="0.5")
    generating: set[str] = set()
    fleet.states.subscribe(lambda k: k.value is S.GENERATING and generating.add(k.key))
    try:
        for s in sessions:
            # receive-only: the server generates from the prompt alone (and a reconnect
            # does not depend on re-sending a local track)
            await s.connect()
        first_ids = [s.session_id for s in sessions]
        await wait_until(lambda: all(v >= 3 for v in fleet.billed_by_session.values()))
        before = fleet.billed_by_session[first_ids[0]]
        # a dropped network (no close frame): a server's normal close (1000) would mean
        # "this session is over", which is not retried
        server.drop_session(first_ids[0])
        await wait_until(lambda: sessions[0].session_id not in (None, first_ids[0]))
        await wait_until(lambda: sessions[0].state is S.GENERATING)
        await wait_until(lambda: fleet.billed_by_session[first_ids[0]] >= before + 2)
        assert set(fleet.billed_by_session) == set(first_ids)  # the key survived
        assert generating == set(first_ids)
        totals = fleet.totals.value
        assert totals.sessions == 2 and totals.generating == 2
        assert totals.billed_s == sum(fleet.billed_by_session.values())
        assert totals.cost == Decimal("0.5") * totals.billed_s
    finally:
        for s in sessions:
            await s.disconnect()
        fleet.close()
