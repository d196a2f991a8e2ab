import asyncio

from reactivex import operators as ops

import rxrealtime as rt


async def main() -> None:
    async with rt.serve_embedded(tick_interval_s=0.5) as server:  # or a real service URL
        session = rt.Session(server.url, api_key=server.api_key, model="lucy-2.6")
        session.generation_ticks.pipe(ops.map(lambda t: t.seconds)).subscribe(
            lambda s: print("billed", s, "s")
        )
        session.connection_changes.subscribe(lambda s: print("state:", s))
        session.errors.subscribe(lambda e: print("error:", e))
        async with session.connect(local_track=rt.media.SyntheticTrack(), prompt="anime"):
            await session.set_prompt("cyberpunk city")
            await asyncio.sleep(3)


asyncio.run(main())
