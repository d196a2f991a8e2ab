"""The terminal view shows how a live session is doing: quality, fps/rtt/loss, first frame."""

from __future__ import annotations

import io
import re

from conftest import wait_until
from rich.console import Console

import rxrealtime as rt
from rxrealtime.dashboards import TerminalDashboard


async def test_the_terminal_view_shows_quality_stats_and_time_to_first_frame(server) -> None:
    session = rt.Session(server.url, api_key=server.api_key, stats_interval_s=0.2)
    console = Console(file=io.StringIO(), width=100, force_terminal=False)
    view = TerminalDashboard(session, console=console, refresh_s=0.05)
    async with session.connect(local_track=rt.media.SyntheticTrack(96, 64, fps=10)):
        await wait_until(lambda: view.quality is not None and view.stats is not None)
        await wait_until(lambda: view.first_frame_s is not None)
        out = io.StringIO()
        Console(file=out, width=100).print(view.render())
    view.stop()
    text = out.getvalue()
    assert "quality" in text and view.quality.level in text
    assert "fps / rtt / loss" in text and "first frame" in text
    assert re.search(r"bitrate in / out\s+│?\s*\d+ kbit/s / \d+ kbit/s", text), text


async def test_prometheus_exports_quality_fps_and_time_to_first_frame(server) -> None:
    from test_dashboards import samples, scrape

    from rxrealtime.dashboards import PrometheusExporter

    session = rt.Session(server.url, api_key=server.api_key, stats_interval_s=0.2)
    exporter = PrometheusExporter(rt.Fleet())
    exporter.watch(session)
    await exporter.start(port=0)
    try:
        async with session.connect(local_track=rt.media.SyntheticTrack(96, 64, fps=10)):
            await wait_until(lambda: session.quality.latest is not None)
            stats = session.stats
            await wait_until(lambda: bool(stats.latest and stats.latest.inbound_fps))
            got = samples(await scrape(exporter))
        labels = (("model", "lucy-2.6"), ("session", session.session_id))
        assert got[("rxrealtime_inbound_fps", labels)] > 0
        assert got[("rxrealtime_time_to_first_frame_seconds", labels)] > 0
        level = session.quality.latest.level  # type: ignore[union-attr]
        state = (("model", "lucy-2.6"), ("rxrealtime_connection_quality", level), labels[1])
        assert got[("rxrealtime_connection_quality", state)] == 1.0
    finally:
        await exporter.stop()
