"""The terminal view shows how a live session is doing: quality, fps/rtt/loss, first frame."""

from __future__ import annotations

import io

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
