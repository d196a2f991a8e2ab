"""Dashboards: Prometheus scraped over real HTTP, the terminal view in virtual time, plots."""

from __future__ import annotations

import io
import re
import sys
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from conftest import wait_until
from prometheus_client.parser import text_string_to_metric_families
from reactivex.testing import TestScheduler
from rich.console import Console

import rxrealtime as rt
from rxrealtime import protocol as p
from rxrealtime.dashboards import BillingLog, PrometheusExporter, TerminalDashboard, plot_billing
from rxrealtime.dashboards.terminal import sparkline
from rxrealtime.latency import GlassToGlass
from rxrealtime.quality import SessionStats


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape as ``{(name, sorted labels): value}``."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scrape(exporter: PrometheusExporter) -> str:
    async with aiohttp.ClientSession() as http, http.get(exporter.url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


async def test_prometheus_exports_a_live_session_over_http(server: rt.EmbeddedServer) -> None:
    session = rt.Session(server.url, api_key=server.api_key, model="lucy-2.6")
    exporter = PrometheusExporter(rt.Fleet(rate_per_second="0.01"))
    exporter.watch(session)
    await exporter.start(port=0)
    try:
        await session.connect(prompt="anime")
        sid = session.session_id
        assert sid is not None
        await session.set_prompt("cyberpunk city")
        await wait_until(lambda: exporter.fleet.total_billed_s >= 3)
        await server.send_raw('{"type": "generation_tick", "seconds": ')  # malformed frame
        await wait_until(lambda: exporter.fleet.total_billed_s >= 4)
        text = await scrape(exporter)
        got = samples(text)
        labels = (("model", "lucy-2.6"), ("session", sid))
        billed = got[("rxrealtime_billed_seconds_total", labels)]
        assert billed >= 4
        assert got[("rxrealtime_ticks_total", labels)] >= 4
        state = (("model", "lucy-2.6"), ("rxrealtime_connection_state", "generating"), labels[1])
        assert got[("rxrealtime_connection_state", state)] == 1.0
        error = (("model", "lucy-2.6"), ("session", sid), ("type", "ProtocolError"))
        assert got[("rxrealtime_errors_total", error)] == 1.0
        ack = ("rxrealtime_prompt_ack_latency_seconds_count", (("model", "lucy-2.6"),))
        assert got[ack] == 2.0  # the prompt sent by connect() and the one above
        assert got[("rxrealtime_fleet_sessions", ())] == 1.0
        assert got[("rxrealtime_fleet_generating_sessions", ())] == 1.0
        assert got[("rxrealtime_fleet_billed_seconds", ())] >= billed
        assert got[("rxrealtime_fleet_cost", ())] > 0
        assert server.api_key not in text
    finally:
        await session.disconnect()
        await exporter.stop()


async def test_prometheus_exporters_have_separate_registries() -> None:
    a, b = PrometheusExporter(), PrometheusExporter()  # no "Duplicated timeseries" error
    session = rt.Session("ws://127.0.0.1:9", api_key="secret-key-123")
    a.watch(session, key="cam")
    session.session_started.emit(rt.SessionInfo(sid="sid-1", ip="127.0.0.1", port=1))
    session.generation_ticks.emit(p.GenerationTick(7))
    assert (
        samples(a.render().decode())[
            ("rxrealtime_billed_seconds_total", (("model", "lucy-2.6"), ("session", "cam")))
        ]
        == 7.0
    )
    assert "rxrealtime_billed_seconds_total{" not in b.render().decode()
    assert "secret-key-123" not in a.render().decode()
    await a.stop()
    await b.stop()


def offline_dashboard(scheduler: TestScheduler, **kwargs: object) -> TerminalDashboard:
    session = rt.Session("ws://127.0.0.1:9", api_key="secret-key-123", model="lucy-2.6")
    return TerminalDashboard(session, scheduler=scheduler, refresh_s=0.25, **kwargs)  # type: ignore[arg-type]


def text_of(dashboard: TerminalDashboard) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(dashboard.render())
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_terminal_view_redraws_at_most_once_per_period_in_virtual_time() -> None:
    scheduler = TestScheduler()
    view = offline_dashboard(scheduler, rate_per_second="0.5")
    ticks = view.session.generation_ticks
    for i in range(1, 100):  # 99 ticks within the first virtual second
        scheduler.schedule_absolute(i / 100, lambda *_, s=i: ticks.emit(p.GenerationTick(s)))
    scheduler.advance_to(1.0)
    assert view.refreshes == 4  # at 0.25, 0.5, 0.75 and 1.0, not 99
    scheduler.advance_to(5.0)
    assert view.refreshes == 4  # nothing happened: nothing is drawn
    scheduler.schedule_absolute(5.1, lambda *_: view.session.errors.emit(rt.ServerError("x")))
    scheduler.advance_to(5.6)
    assert view.refreshes == 5
    assert view.billed_s == 99 and view.cost == Decimal("49.5")
    text = text_of(view)
    assert "99 s (99 ticks)" in text and "49.5" in text and "ServerError: x" in text
    assert "secret-key-123" not in text and "api_key=***" in text


def test_terminal_view_totals_billing_across_a_reconnect() -> None:
    scheduler = TestScheduler()
    view = offline_dashboard(scheduler)
    s = view.session
    info = rt.SessionInfo(sid="a", ip="127.0.0.1", port=1)
    s.session_started.emit(info)
    for n in (1, 2, 3):
        s.generation_ticks.emit(p.GenerationTick(n))
    s.session_started.emit(info)
    s.generation_ticks.emit(p.GenerationTick(1))
    assert view.billed_s == 4
    assert "n/a (no rate given)" in text_of(view)


def test_sparkline_scales_to_the_busiest_second() -> None:
    assert sparkline([0, 5, 10]) == "▁▅█"
    assert sparkline([0, 0]) == "▁▁"


def test_plot_draws_billing_and_cost_to_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    log = BillingLog(rate=Decimal("0.02"), samples=[(0.5, 1), (1.0, 2), (1.5, 3)])
    out = plot_billing(log, tmp_path / "billing.png")
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5000


def test_plot_without_matplotlib_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    with pytest.raises(rt.ConfigError, match=re.escape("rxrealtime[plot]")):
        plot_billing(BillingLog(), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_grafana_dashboard_only_queries_metrics_the_exporter_exports() -> None:
    import json

    path = Path(__file__).resolve().parent.parent / "examples" / "grafana_dashboard.json"
    dashboard = json.loads(path.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = set(re.findall(r"\brxrealtime_[a-z_]+", " ".join(exprs)))
    exporter = PrometheusExporter()
    session = rt.Session("ws://127.0.0.1:9", api_key="k")
    exporter.watch(session, key="s")
    session.generation_ticks.emit(p.GenerationTick(1))
    session.errors.emit(rt.ServerError("x"))
    exporter.observe_prompt_ack("lucy-2.6", 0.01)
    families = text_string_to_metric_families(exporter.render().decode())
    exported = {s.name for family in families for s in family.samples}
    assert used and used <= exported, used - exported
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_terminal_view_shows_a_stall_in_virtual_time() -> None:
    scheduler = TestScheduler()
    view = offline_dashboard(scheduler, stall_after_s=2.0)
    s = view.session
    scheduler.schedule_absolute(
        0.1, lambda *_: s.connection_changes.emit(rt.ConnectionState.GENERATING)
    )
    scheduler.schedule_absolute(0.5, lambda *_: s.generation_ticks.emit(p.GenerationTick(1)))
    scheduler.advance_to(2.4)
    assert view.stalls == 0 and not view.stalled
    scheduler.advance_to(2.6)  # 2 s after the last tick
    assert view.stalls == 1 and view.stalled
    assert "no tick for 2 s" in text_of(view)
    scheduler.schedule_absolute(3.0, lambda *_: s.generation_ticks.emit(p.GenerationTick(2)))
    scheduler.advance_to(3.1)
    assert not view.stalled and "no tick" not in text_of(view)


# -- glass-to-glass latency (SessionStats.latency) -------------------------------------

LATENCY = GlassToGlass(
    first_frame_s=0.84, p50_s=0.042, p90_s=0.0615, samples=120, source="picture-stamp"
)


def stats_with(latency: GlassToGlass | None) -> SessionStats:
    return SessionStats(interval_s=1.0, inbound_fps=30.0, outbound_fps=30.0, rtt_s=0.02,
                        latency=latency)  # fmt: skip


def test_terminal_view_shows_glass_to_glass_latency() -> None:
    view = offline_dashboard(TestScheduler())

    def row() -> str | None:
        lines = [line for line in text_of(view).splitlines() if "glass-to-glass" in line]
        return lines[0] if lines else None

    view.session.stats.emit(stats_with(LATENCY))
    assert "p50 42 ms · p90 62 ms · first frame 0.84 s · picture-stamp, 120 samples" in (
        row() or ""
    )
    view.session.stats.emit(stats_with(GlassToGlass(first_frame_s=1.5)))  # nothing matched
    line = row() or ""
    assert "p50 n/a · p90 n/a · first frame 1.50 s" in line and "0 ms" not in line
    view.session.stats.emit(stats_with(None))  # nothing measured: no row at all
    assert row() is None and "fps / rtt / loss" in text_of(view)


async def test_prometheus_exports_glass_to_glass_quantiles_and_first_frame() -> None:
    exporter = PrometheusExporter()
    measured = rt.Session("ws://127.0.0.1:9", api_key="k", model="lucy-2.6")
    exporter.watch(measured, key="a")
    unmatched = rt.Session("ws://127.0.0.1:9", api_key="k", model="lucy-2.6")
    exporter.watch(unmatched, key="b")
    blind = rt.Session("ws://127.0.0.1:9", api_key="k", model="lucy-2.6")
    exporter.watch(blind, key="c")
    measured.stats.emit(stats_with(LATENCY))
    unmatched.stats.emit(stats_with(GlassToGlass(first_frame_s=1.5)))
    blind.stats.emit(stats_with(None))
    got = samples(exporter.render().decode())
    await exporter.stop()
    g2g = "rxrealtime_glass_to_glass_seconds"
    a = (("model", "lucy-2.6"), ("session", "a"))
    assert got[(g2g, (*a[:1], ("quantile", "0.5"), a[1]))] == 0.042
    assert got[(g2g, (*a[:1], ("quantile", "0.9"), a[1]))] == 0.0615
    assert got[("rxrealtime_time_to_first_frame_seconds", a)] == 0.84
    b = (("model", "lucy-2.6"), ("session", "b"))
    assert got[("rxrealtime_time_to_first_frame_seconds", b)] == 1.5
    series = {dict(labels)["session"] for name, labels in got if name == g2g}
    assert series == {"a"}  # nothing measured for b or c: no series, not a 0
    c = (("model", "lucy-2.6"), ("session", "c"))
    assert ("rxrealtime_time_to_first_frame_seconds", c) not in got
    assert got[("rxrealtime_inbound_fps", c)] == 30.0  # c's stats did arrive
