"""Budget alerts at 50 %, 80 % and 100 % of 10 billed seconds, each exactly once."""

import asyncio

import rxrealtime as rt
from rxrealtime import operators as rto


async def main() -> None:
    async with rt.serve_embedded(tick_interval_s=0.1) as server:
        session = rt.Session(server.url, api_key=server.api_key, model="lucy-2.6")
        done = asyncio.Event()

        def on_alert(alert: rto.BudgetAlert) -> None:
            print(f"alert: {alert.threshold:.0%} of budget, {alert.billed_s} s, cost {alert.cost}")
            if alert.threshold >= 1.0:
                done.set()

        session.generation_ticks.pipe(
            rto.billed_seconds(resets=session.session_started),
            rto.budget_alert(limit_s=10, warn_at=(0.5, 0.8, 1.0), rate_per_second="0.05"),
        ).subscribe(on_alert)
        async with session.connect(prompt="anime"):
            await asyncio.wait_for(done.wait(), 20)


asyncio.run(main())
