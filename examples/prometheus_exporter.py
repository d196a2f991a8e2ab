"""Prometheus metrics of a live session on http://127.0.0.1:PORT/metrics (scraped once here)."""

import asyncio

import aiohttp

import rxrealtime as rt
from rxrealtime.dashboards import PrometheusExporter


async def main() -> None:
    async with rt.serve_embedded(tick_interval_s=0.1) as server:
        session = rt.Session(server.url, api_key=server.api_key, model="lucy-2.6")
        exporter = PrometheusExporter(rt.Fleet(rate_per_second="0.01"))
        exporter.watch(session)
        async with exporter:  # serves on a free loopback port; pass start(port=9464) to fix it
            print("metrics on", exporter.url)
            async with session.connect(prompt="anime"):
                await session.set_prompt("cyberpunk city")  # the exporter times the ack
                await asyncio.sleep(1.5)
                async with aiohttp.ClientSession() as http, http.get(exporter.url) as response:
                    text = await response.text()
        for line in text.splitlines():
            if line.startswith(("rxrealtime_billed", "rxrealtime_fleet", "rxrealtime_ticks")):
                print(line)


asyncio.run(main())
