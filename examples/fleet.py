"""A fleet of 5 sessions: per-session billing keyed by session id, and fleet totals."""

import asyncio

import rxrealtime as rt


async def main() -> None:
    async with rt.serve_embedded(tick_interval_s=0.1) as server:
        sessions = [
            rt.Session(server.url, api_key=server.api_key, model="mirage_v2") for _ in range(5)
        ]
        fleet = rt.Fleet(sessions, prices={"mirage_v2": "0.01"})
        fleet.billed.subscribe(lambda k: k.value == 5 and print(f"{k.key}: 5 s billed"))
        try:
            # receive-only sessions: the server generates from the prompt alone
            await asyncio.gather(*(s.connect(prompt=f"scene {i}") for i, s in enumerate(sessions)))
            await asyncio.sleep(1.5)
            totals = fleet.totals.value
            print(f"fleet: {totals.generating} of {totals.sessions} generating, cost {totals.cost}")
        finally:
            await asyncio.gather(*(s.disconnect() for s in sessions))
        for key, billed in fleet.billed_by_session.items():
            print(f"session {key}: {billed} s")
        print(f"total: {fleet.total_billed_s} s over {len(fleet.billed_by_session)} sessions")
        fleet.close()


asyncio.run(main())
