"""Speed tiers end to end: the embedded server records the tier each session is served
at, and a fleet prices the same sessions the way the server's record says they cost."""

from __future__ import annotations

import warnings
from decimal import Decimal

from conftest import wait_until

import rxrealtime as rt
from rxrealtime.billing import resolve_rate


async def test_the_server_records_each_sessions_tier_beside_its_billed_seconds() -> None:
    prices = {"lucy-2.6": "0.01", "lucy-2.1": "0.004"}
    async with rt.serve_embedded(tick_interval_s=0.1) as server:
        rt.models.reset_warnings()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # lucy-2.1 has no fast tier
            sessions = [
                rt.Session(server.url, api_key=server.api_key, model=model, speed=speed)
                for model, speed in (("lucy-2.6", "fast"), ("lucy-2.6", None), ("lucy-2.1", "fast"))
            ]
        assert [s.tier for s in sessions] == ["fast", "standard", "standard"]
        fleet = rt.Fleet(sessions, prices=prices)
        try:
            for s in sessions:
                await s.connect()  # receive-only: the server generates from the prompt alone
            ids = [s.session_id for s in sessions]
            assert ids[0] is not None and ids[2] is not None
            # recorded from the query as soon as the session is accepted
            assert [server.tier_by_session[i] for i in ids if i] == ["fast", "standard", "standard"]
            assert "speed=fast" in sessions[2].url  # asked for, sent, ignored by the service
            await wait_until(lambda: all(v >= 2 for v in fleet.billed_by_session.values()))
        finally:
            for s in sessions:
                await s.disconnect()
        await wait_until(lambda: len(server.billed_by_session) == 3)
    billed = server.billed_by_session
    assert set(billed) == set(server.tier_by_session) == set(ids)
    # The server's record priced with the same table is what the fleet counted.
    models = dict(zip(ids, ("lucy-2.6", "lucy-2.6", "lucy-2.1"), strict=True))
    by_server = sum(
        (resolve_rate(None, prices, models[sid], server.tier_by_session[sid]) or Decimal(0))
        * seconds
        for sid, seconds in billed.items()
    )
    assert fleet.total_billed_s == sum(billed.values())
    assert fleet.totals.value.cost == by_server
    fast_cost = Decimal("0.02") * billed[ids[0]]  # 2 x the standard 0.01
    standard_cost = Decimal("0.01") * billed[ids[1]] + Decimal("0.004") * billed[ids[2]]
    assert by_server == fast_cost + standard_cost
    fleet.close()


async def test_a_name_outside_the_catalogue_keeps_the_tier_it_asked_for(
    server: rt.EmbeddedServer,
) -> None:
    # The embedded server serves any model name, as the protocol allows; for a name it
    # does not know it cannot tell whether the tier exists, so it records what was asked.
    custom = rt.ModelDefinition(name="lucy-next", url_path="/v1/stream", fps=30, width=1280,
                                height=720, speeds=("fast",))  # fmt: skip
    session = rt.Session(server.url, api_key=server.api_key, model=custom, speed="fast",
                         transport="none")  # fmt: skip
    await session.connect()
    try:  # signaling only: no session id frame, but the server accepted the session
        assert list(server.tier_by_session.values()) == ["fast"] and session.tier == "fast"
    finally:
        await session.disconnect()
