"""``async for`` over billing: the first 5 running totals of a session."""

import asyncio

import rxrealtime as rt
from rxrealtime import operators as rto


async def main() -> None:
    async with rt.serve_embedded(tick_interval_s=0.1) as server:
        session = rt.Session(server.url, api_key=server.api_key, model="lucy-2.6")
        billed = session.generation_ticks.pipe(rto.billed_seconds(resets=session.session_started))
        async with session.connect(prompt="anime"):
            count = 0
            async for total in rt.values(billed):
                print("billed so far:", total, "s")
                count += 1
                if count == 5:
                    break


asyncio.run(main())
