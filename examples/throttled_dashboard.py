"""A live terminal dashboard, redrawn at most twice a second however fast ticks arrive."""

import asyncio

import rxrealtime as rt
from rxrealtime.dashboards import TerminalDashboard


async def main() -> None:
    async with rt.serve_embedded(tick_interval_s=0.05) as server:  # 20 ticks a second
        session = rt.Session(server.url, api_key=server.api_key, model="lucy-2.6")
        view = TerminalDashboard(session, rate_per_second="0.002", refresh_s=0.5)
        with view:
            async with session.connect(prompt="anime"):
                await asyncio.sleep(2)
        print(f"{view.ticks} ticks, {view.refreshes} redraws, cost {view.cost}")


asyncio.run(main())
