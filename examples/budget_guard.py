"""A budget guard: the session is disconnected cleanly once it has billed 5 seconds."""

import asyncio

import rxrealtime as rt
from rxrealtime import operators as rto


async def main() -> None:
    async with rt.serve_embedded(tick_interval_s=0.1) as server:
        session = rt.Session(server.url, api_key=server.api_key, model="lucy-2.6")
        session.generation_ticks.pipe(
            rto.billed_seconds(resets=session.session_started),
            rto.budget_guard(session, limit_s=5),
        ).subscribe(lambda e: print(f"budget reached: {e.billed_s} s billed, disconnecting"))
        session.connection_changes.subscribe(lambda s: print("state:", s))
        await session.connect(prompt="anime")
        while not session.closed:  # the guard ends the session; wait for it
            await asyncio.sleep(0.05)
        print("session closed by the guard:", session.state)


asyncio.run(main())
