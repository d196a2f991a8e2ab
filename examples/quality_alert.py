"""Alert when connection quality stays poor (or worse) for 5 s.

``session.quality`` emits a verdict on every change; a verdict that holds for 5 s
without a better one is an alert. Against the embedded server the example sends video
at 3 fps, so the generated video comes back at 3 fps too: critical, limited by fps.
"""

import asyncio

from reactivex import operators as ops

import rxrealtime as rt

BAD = ("poor", "critical")


async def main(hold_s: float = 5.0, seconds: float = 9.0) -> None:
    async with rt.serve_embedded(tick_interval_s=0.5) as server:
        session = rt.Session(server.url, api_key=server.api_key, stats_interval_s=0.5)
        session.quality.subscribe(lambda q: print("quality:", q.level, q.limiting or ""))
        session.quality.pipe(
            ops.debounce(hold_s, scheduler=session.scheduler),  # held for hold_s
            ops.filter(lambda q: q.level in BAD),
        ).subscribe(lambda q: print(f"ALERT: quality {q.level} ({q.limiting}) for {hold_s} s"))
        async with session.connect(local_track=rt.media.SyntheticTrack(fps=3)):
            await asyncio.sleep(seconds)


if __name__ == "__main__":
    asyncio.run(main())
