"""A fleet of 5 sessions: per-session billing keyed by session id, and fleet totals.

Two sessions ask for the fast tier (``speed="fast"``): the fleet prices each session at
its tier, a fast second at twice the model's standard price (or at a price of its own,
``"lucy-2.6:fast"``, when the table has one)."""

import asyncio

import rxrealtime as rt


async def main() -> None:
    async with rt.serve_embedded(tick_interval_s=0.1) as server:
        sessions = [
            rt.Session(server.url, api_key=server.api_key, model="lucy-2.6",
                       speed="fast" if i < 2 else None)
            for i in range(5)
        ]  # fmt: skip
        fleet = rt.Fleet(sessions, prices={"lucy-2.6": "0.01"})  # fast: 0.02 a second
        fleet.billed.subscribe(lambda k: k.value == 5 and print(f"{k.key}: 5 s billed"))
        try:
            # receive-only sessions: the server generates from the prompt alone
            await asyncio.gather(*(s.connect(prompt=f"scene {i}") for i, s in enumerate(sessions)))
            await asyncio.sleep(1.0)  # ~10 s billed each: cost 2 x 10 x 0.02 + 3 x 10 x 0.01
            totals = fleet.totals.value
            print(f"fleet: {totals.generating} of {totals.sessions} generating, cost {totals.cost}")
        finally:
            await asyncio.gather(*(s.disconnect() for s in sessions))
        for session in sessions:
            key = fleet.key_of(session)
            price = fleet.price_of(session.model.name, session.tier)
            print(f"session {key} ({session.tier}): {fleet.billed_by_session[key]} s at {price}/s")
        print(f"total: {fleet.total_billed_s} s over {len(fleet.billed_by_session)} sessions")
        fleet.close()


asyncio.run(main())
