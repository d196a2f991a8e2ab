"""The web dashboard: SSE, routes and MJPEG over real HTTP, and the page in a real browser.

The browser test drives Debian's Chromium (``/usr/bin/chromium``, or
``$RXREALTIME_CHROMIUM``) with Playwright for Python against a live session of the
embedded server. Without them it skips with the command to install them; under
``CI=true`` that is a failure. ``RXREALTIME_WRITE_SCREENSHOT=1`` also writes the
screenshot to ``docs/dashboard.png``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import socket
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import wait_until

import rxrealtime as rt
from rxrealtime import protocol as p
from rxrealtime.dashboards.web import WebDashboard, serve

ROOT = Path(__file__).resolve().parents[1]
TICK_S = 0.2  # the conftest server's tick interval: one billed second per tick


async def events(http: aiohttp.ClientSession, url: str) -> AsyncIterator[dict[str, Any]]:
    """The snapshots of ``/events``, as they arrive."""
    async with http.get(url + "events") as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        async for line in response.content:
            if line.startswith(b"data: "):
                yield json.loads(line[6:])


async def test_sse_client_sees_each_tick_within_one_tick_interval(
    server: rt.EmbeddedServer,
) -> None:
    session = rt.Session(server.url, api_key=server.api_key, model="lucy-2.6")
    loop = asyncio.get_running_loop()
    billed_at: dict[int, float] = {}  # billed total -> when its tick reached the session
    session.generation_ticks.subscribe(lambda t: billed_at.setdefault(t.seconds, loop.time()))
    seen_at: dict[int, float] = {}
    async with await serve(session, rate_per_second="0.01") as dashboard:
        async with aiohttp.ClientSession() as http:
            stream = events(http, dashboard.url)
            first = await anext(stream)
            assert "history" in first and first["sessions"][0]["state"] == "disconnected"
            async with session.connect(prompt="anime"):
                async for snap in stream:
                    seen_at.setdefault(snap["totals"]["billed_s"], loop.time())
                    if len(seen_at) > 8:
                        break
            await stream.aclose()
    delays = [seen_at[n] - billed_at[n] for n in seen_at if n in billed_at]
    assert len(delays) >= 6
    assert max(delays) < TICK_S, delays
    row = snap["sessions"][0]
    assert Decimal(row["cost"]) == Decimal("0.01") * row["billed_s"] > 0


async def test_a_client_that_leaves_leaves_nothing_running(server: rt.EmbeddedServer) -> None:
    session = rt.Session(server.url, api_key=server.api_key, model="lucy-2.6")
    async with session.connect(local_track=rt.media.SyntheticTrack(), prompt="anime"):
        await session.frames.next(timeout=10)  # the first frame: the session's own watchers
        frame_subscribers = session.frames.subscriber_count  # are in place
        async with await serve(session) as dashboard:
            tasks = len(asyncio.all_tasks())
            key = dashboard.fleet.key_of(session)
            async with aiohttp.ClientSession() as http:
                stream = events(http, dashboard.url)
                await anext(stream)
                async with http.get(f"{dashboard.url}video/{key}") as video:
                    assert video.headers["Content-Type"].startswith("multipart/x-mixed-replace")
                    body = b""
                    while body.count(b"\xff\xd8") < 2:  # two JPEG images
                        body += await video.content.readany()
                    assert dashboard.clients == 1 and dashboard.viewers == 1
                    assert session.frames.subscriber_count == frame_subscribers + 1
                await stream.aclose()
            await wait_until(lambda: dashboard.clients == 0 and dashboard.viewers == 0)
            await wait_until(lambda: len(asyncio.all_tasks()) <= tasks)
            assert session.frames.subscriber_count == frame_subscribers  # no more encoding


async def test_fifty_slow_clients_do_not_delay_the_ticks(server: rt.EmbeddedServer) -> None:
    session = rt.Session(server.url, api_key=server.api_key, model="lucy-2.6")
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []
    session.generation_ticks.subscribe(lambda _: arrivals.append(loop.time()))
    # 256 KB snapshots fill a small-window socket after a few events: its writes then block
    async with await serve(session, title="x" * 262144, queue_size=2) as dashboard:
        writers = []
        for _ in range(50):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a
            sock.setblocking(False)  # small window, so the server's writes soon block
            await loop.sock_connect(sock, ("127.0.0.1", dashboard.port))
            _, writer = await asyncio.open_connection(sock=sock)
            writer.write(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            writers.append(writer)  # and never read
        await wait_until(lambda: dashboard.clients == 50)
        async with session.connect(prompt="anime"):
            await asyncio.sleep(3.0)
            published = dashboard.published
            assert dashboard.backlog == 2  # the clients are slow: full queues, and bounded
        for writer in writers:
            writer.close()
        await wait_until(lambda: dashboard.clients == 0)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert published >= 10 and len(arrivals) >= 12
    assert max(gaps) < TICK_S + 0.15, gaps


async def test_the_dashboard_serves_its_routes_only_and_never_the_key(
    server: rt.EmbeddedServer,
) -> None:
    session = rt.Session(server.url, api_key=server.api_key, model="lucy-2.6")
    async with await serve(session, budget_s=600) as dashboard:
        assert dashboard.host == "127.0.0.1"  # loopback unless told
        async with session.connect(prompt="anime"), aiohttp.ClientSession() as http:
            await wait_until(lambda: dashboard.fleet.total_billed_s >= 2)
            texts = []
            for path in ("", "api/state", "api/log.csv", "static/app.js", "static/uPlot.min.css"):
                async with http.get(dashboard.url + path) as response:
                    assert response.status == 200, path
                    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
                    texts.append(await response.text())
            texts.append(json.dumps(await anext(events(http, dashboard.url))))
            outside = ("x", "static/web.py", "static/index.html", "static/..%2fweb.py", "api",
                       "static/%2e%2e/web.py", "static/", "video/nope", "metrics")  # fmt: skip
            for path in outside:
                async with http.get(dashboard.url + path) as response:
                    assert response.status == 404, path
            async with http.post(dashboard.url + "api/state") as response:
                assert response.status == 405
    assert server.api_key and all(server.api_key not in text for text in texts)
    state = json.loads(texts[1])
    row = state["sessions"][0]
    assert row["url"] == session.url and row["budget_used"] == pytest.approx(
        row["billed_s"] / 600, abs=1e-4
    )
    log = texts[2].splitlines()
    assert log[0] == "time,session,model,billed_s,cost" and len(log) >= 3


def test_a_fleet_shows_one_row_per_session_and_its_totals() -> None:
    async def scenario() -> dict[str, Any]:
        fleet = rt.Fleet(prices={"lucy-2.6": "0.02", "lucy-2.1": "0.05"})
        a = rt.Session("ws://127.0.0.1:9", api_key="k", model="lucy-2.6")
        b = rt.Session("ws://127.0.0.1:9", api_key="k", model="lucy-2.1")
        fleet.add(a, key="a")
        dashboard = WebDashboard(fleet, budget_s=10)
        fleet.add(b, key="b")  # added later: it gets a row too
        for seconds in (1, 2, 3):
            a.generation_ticks.emit(p.GenerationTick(seconds))
        b.generation_ticks.emit(p.GenerationTick(9))
        b.connection_changes.emit(rt.ConnectionState.GENERATING)
        snap = dashboard.state.snapshot()
        await dashboard.stop()
        return snap

    snap = asyncio.run(scenario())
    rows = {row["key"]: row for row in snap["sessions"]}
    assert set(rows) == {"a", "b"}
    assert rows["a"]["cost"] == "0.06" and rows["b"]["cost"] == "0.45"
    assert rows["a"]["budget_level"] == "ok" and rows["b"]["budget_level"] == "warn"
    assert snap["totals"] | {"burn_per_min": 0} == {
        "sessions": 2, "generating": 1, "billed_s": 12, "cost": "0.51", "burn_per_min": 0,
        "cost_per_min": snap["totals"]["cost_per_min"], "next_hour_cost":
        snap["totals"]["next_hour_cost"], "first_limit_in_s": snap["totals"]["first_limit_in_s"],
    }  # fmt: skip


def test_a_row_carries_glass_to_glass_latency_and_null_where_not_measured() -> None:
    from rxrealtime.latency import GlassToGlass
    from rxrealtime.quality import SessionStats

    async def scenario() -> dict[str, Any]:
        fleet = rt.Fleet()
        sessions = {key: rt.Session("ws://127.0.0.1:9", api_key="k") for key in "abcd"}
        for key, session in sessions.items():
            fleet.add(session, key=key)
        dashboard = WebDashboard(fleet)
        measured = GlassToGlass(first_frame_s=0.84, p50_s=0.0421, p90_s=0.0615, samples=120,
                                source="picture-stamp")  # fmt: skip
        sessions["a"].stats.emit(SessionStats(1.0, 30.0, 30.0, latency=measured))
        sessions["b"].stats.emit(SessionStats(1.0, 30.0, 30.0, latency=GlassToGlass(1.5)))
        sessions["c"].stats.emit(SessionStats(1.0, 30.0, 30.0))  # "d": no stats at all
        snap = dashboard.state.snapshot()
        await dashboard.stop()
        return {row["key"]: row["latency"] for row in snap["sessions"]}

    rows = asyncio.run(scenario())
    assert rows["a"] == {"p50_ms": 42.1, "p90_ms": 61.5, "first_frame_s": 0.84, "samples": 120,
                         "source": "picture-stamp"}  # fmt: skip
    assert rows["b"] == {"p50_ms": None, "p90_ms": None, "first_frame_s": 1.5, "samples": 0,
                         "source": None}  # fmt: skip
    assert rows["c"] is None and rows["d"] is None


def test_a_row_carries_the_measured_bitrate_and_null_until_measured() -> None:
    from rxrealtime.quality import SessionStats

    async def scenario() -> dict[str, Any]:
        fleet = rt.Fleet()
        sessions = {key: rt.Session("ws://127.0.0.1:9", api_key="k") for key in "abc"}
        for key, session in sessions.items():
            fleet.add(session, key=key)
        dashboard = WebDashboard(fleet)
        sessions["a"].stats.emit(
            SessionStats(
                1.0,
                15.0,
                15.0,
                inbound_bitrate_bps=248_498.4,
                outbound_bitrate_bps=317_984.0,
                packet_loss=0.09,
            )
        )
        sessions["b"].stats.emit(SessionStats(1.0, 15.0, 15.0))  # "c": no stats at all
        snap = dashboard.state.snapshot()
        await dashboard.stop()
        return {row["key"]: row for row in snap["sessions"]}

    rows = asyncio.run(scenario())
    picked = {k: (r["bitrate_in_bps"], r["bitrate_out_bps"], r["loss"]) for k, r in rows.items()}
    assert picked == {"a": (248_498, 317_984, 0.09), "b": (None, None, None),
                      "c": (None, None, None)}  # fmt: skip


# -- the page in a real browser -----------------------------------------------------

CHROMIUM = os.environ.get("RXREALTIME_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def browser_or_skip() -> Any:
    """Playwright's async API, or a skip naming the install command (a failure in CI)."""
    reason = None
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        reason = "needs Playwright: .venv/bin/pip install playwright (in the dev extra)"
    if reason is None and not Path(CHROMIUM).exists():
        reason = "needs Chromium: apt-get update && apt-get install -y chromium"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test under CI=true: {reason}")
        pytest.skip(reason)
    return async_playwright


async def test_the_page_in_chromium(server: rt.EmbeddedServer, tmp_path: Path) -> None:
    async_playwright = browser_or_skip()
    session = rt.Session(server.url, api_key=server.api_key, model="lucy-2.6")
    budget = 24  # billed seconds: amber from 19.2, red from 24 (5 billed s per second)
    dashboard = await serve(session, rate_per_second="0.01", budget_s=budget)
    async with dashboard, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 860})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            requested: list[str] = []
            page.on("request", lambda r: requested.append(r.url))
            await page.goto(dashboard.url)
            await page.wait_for_selector('#conn[data-state="live"]')
            async with session.connect(local_track=rt.media.SyntheticTrack(), prompt="anime"):
                billed = page.locator('.session [data-field="billed_s"]')
                first = await poll(page, BILLED_JS, lambda n: n >= 2)
                await poll(page, BILLED_JS, lambda n: n >= first + 3)  # it rises
                await session.set_prompt("cyberpunk city")
                bar = page.locator(".session .bar")
                await page.wait_for_selector('.session .bar[data-level="warn"]', timeout=15000)
                amber = await fill_colour(page)
                await page.wait_for_selector('.session .bar[data-level="over"]', timeout=15000)
                red = await fill_colour(page)
                assert (amber, red) == ("rgb(240, 160, 32)", "rgb(248, 81, 73)")
                video = page.locator(".session .video img")
                await poll(page, "document.querySelector('.session .video img').naturalWidth", bool)
                shots = [await video.screenshot()]
                await asyncio.sleep(0.5)
                shots.append(await video.screenshot())
                assert shots[0] != shots[1], "the video does not change"
                # glass-to-glass: the synthetic source's picture stamp comes back (aiortc)
                latency = page.locator('.session [data-field="latency"]')
                await poll(page, LATENCY_JS, lambda t: "picture-stamp" in t)
                assert re.search(
                    r"^p50 \d+ ms · p90 \d+ ms · first frame \d+\.\d\d s · "
                    r"picture-stamp, \d+ samples$",
                    await latency.text_content() or "",
                )
                bitrate = "document.querySelector('[data-field=bitrate]')?.textContent || ''"
                rates = r"^\d+ kbit/s / \d+ kbit/s$|Mbit/s"
                await poll(page, bitrate, lambda t: re.search(rates, t) is not None)
                chart = "document.querySelectorAll('#chart canvas, #chart .u-series').length"
                await poll(page, chart, lambda n: n >= 4)  # a plot and 3 series: time, 2 lines
                text = await page.content()
                assert "ticks)" in (await billed.text_content() or "")
                assert await bar.get_attribute("data-level") == "over"
                shot = tmp_path / "dashboard.png"
                await page.screenshot(path=str(shot), full_page=True)
        finally:
            await browser.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("RXREALTIME_WRITE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "dashboard.png")
    assert server.api_key not in text
    assert problems == []
    assert all(url.startswith(dashboard.url) for url in requested), requested  # no CDN


BILLED_JS = "parseInt(document.querySelector('[data-field=billed_s]')?.textContent) || 0"
LATENCY_JS = "document.querySelector('[data-field=latency]')?.textContent || ''"


async def poll(page: Any, expression: str, ok: Any, timeout: float = 15.0) -> Any:
    """Evaluate ``expression`` in the page until ``ok(value)``: Playwright's own
    ``wait_for_function`` evaluates strings with ``eval``, which the page's CSP forbids."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not ok(value := await page.evaluate(expression)):
        assert loop.time() < deadline, f"{expression} is still {value!r}"
        await asyncio.sleep(0.05)
    return value


async def fill_colour(page: Any) -> str:
    colour: str = await page.evaluate(
        "getComputedStyle(document.querySelector('.session .bar .fill')).backgroundColor"
    )
    return colour


# -- Prometheus budget gauges and the Grafana dashboard -----------------------------


def scrape_samples(exporter: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exporter.render().decode())
        for s in family.samples
    }


def test_prometheus_shows_burn_rate_and_budget_gauges() -> None:
    from rxrealtime.dashboards import PrometheusExporter

    async def scenario() -> tuple[dict[Any, float], dict[Any, float]]:
        session = rt.Session("ws://127.0.0.1:9", api_key="k", model="lucy-2.6")
        budgeted = PrometheusExporter(rt.Fleet(rate_per_second="0.01"), budget_s=100)
        budgeted.watch(session, key="s")
        plain = PrometheusExporter()
        plain.watch(session, key="s")
        for seconds in range(1, 11):
            session.generation_ticks.emit(p.GenerationTick(seconds))
        got = scrape_samples(budgeted), scrape_samples(plain)
        await budgeted.stop()
        await plain.stop()
        return got

    budgeted, plain = asyncio.run(scenario())
    labels = (("model", "lucy-2.6"), ("session", "s"))
    assert budgeted[("rxrealtime_budget_limit_seconds", labels)] == 100
    assert budgeted[("rxrealtime_budget_remaining_seconds", labels)] == 90
    assert budgeted[("rxrealtime_burn_rate_seconds_per_minute", labels)] > 0
    assert plain[("rxrealtime_budget_remaining_seconds", labels)] == float("inf")
    unknown = (*labels, ("rxrealtime_connection_quality", "unknown"))
    assert plain[("rxrealtime_connection_quality", tuple(sorted(unknown)))] == 1


async def test_prometheus_serves_metrics_with_its_own_aiohttp_handler() -> None:
    import importlib.util

    from rxrealtime.dashboards import PrometheusExporter

    own_handler = importlib.util.find_spec("prometheus_client.aiohttp") is not None
    async with PrometheusExporter() as exporter, aiohttp.ClientSession() as http:
        async with http.get(exporter.url) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
        if not own_handler:  # prometheus-client < 0.22 (our floor): the text format only
            return
        headers = {"Accept": "application/openmetrics-text; version=1.0.0"}
        async with http.get(exporter.url, headers=headers) as response:
            assert response.headers["Content-Type"].startswith("application/openmetrics-text")


def test_grafana_dashboard_has_model_and_session_variables_and_budget_panels() -> None:
    import re

    from rxrealtime.dashboards import PrometheusExporter

    dashboard = json.loads((ROOT / "examples" / "grafana_dashboard.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"model", "session"}
    assert all(v["includeAll"] and v["multi"] for v in variables.values())
    panels = dashboard["panels"]
    exprs = [t["expr"] for panel in panels for t in panel["targets"]]
    for expr in exprs:  # every per-session series is filtered by both variables
        if "fleet_" not in expr and "prompt_ack" not in expr:
            assert 'model=~"$model"' in expr and 'session=~"$session"' in expr, expr
    titles = " | ".join(panel["title"] for panel in panels).lower()
    assert "burn rate" in titles and "budget remaining" in titles and "quality" in titles
    grid = [panel["gridPos"] for panel in panels]
    cells = [(x, y) for g in grid for x in range(g["x"], g["x"] + g["w"])
             for y in range(g["y"], g["y"] + g["h"])]  # fmt: skip
    assert len(cells) == len(set(cells)), "panels overlap"

    async def exported() -> set[str]:
        exporter = PrometheusExporter(budget_s=60)
        session = rt.Session("ws://127.0.0.1:9", api_key="k")
        exporter.watch(session, key="s")
        session.generation_ticks.emit(p.GenerationTick(1))
        session.errors.emit(rt.ServerError("x"))
        exporter.observe_prompt_ack("lucy-2.6", 0.01)
        names = {name for name, _ in scrape_samples(exporter)}
        await exporter.stop()
        return names

    used = set(re.findall(r"\brxrealtime_[a-z_]+", " ".join(exprs)))
    assert used <= asyncio.run(exported()), used


# -- watch --web --budget-s --stop-at-budget --idle-stop-s ----------------------------


async def test_watch_with_web_budget_alerts_and_stop_at_budget(server: rt.EmbeddedServer) -> None:
    import io
    import re

    from rich.console import Console

    from rxrealtime.cli.main import run_watch

    out = io.StringIO()
    watching = asyncio.ensure_future(
        run_watch(
            server.url,
            "lucy-2.6",
            api_key=server.api_key,
            rate_per_second="0.01",
            budget_s=6,
            stop_at_budget=True,
            web=("127.0.0.1", 0),
            seconds=20,
            console=Console(file=out, width=200),
            json_mode=True,
        )
    )
    await wait_until(lambda: "dashboard on " in out.getvalue())
    url = re.search(r"dashboard on (\S+)", out.getvalue())
    assert url is not None
    async with aiohttp.ClientSession() as http, http.get(url[1] + "api/state") as response:
        state = await response.json()
    assert state["budget"] == {"limit_s": 6, "limit_cost": None}
    summary = await asyncio.wait_for(watching, 15)
    assert summary.ended_by == "budget reached" and summary.billed_seconds >= 6
    assert [a.split(":")[0] for a in summary.budget_alerts] == [
        "budget 50% reached", "budget 80% reached", "budget 100% reached"
    ]  # fmt: skip
    assert "budget 80% reached" in out.getvalue()


async def test_watch_stops_a_session_nobody_changes_or_watches(server: rt.EmbeddedServer) -> None:
    import io
    import re

    from rich.console import Console

    from rxrealtime.cli.main import run_watch

    out = io.StringIO()
    watching = asyncio.ensure_future(
        run_watch(
            server.url,
            "lucy-2.6",
            api_key=server.api_key,
            idle_stop_s=1.0,
            seconds=15,
            web=("127.0.0.1", 0),
            console=Console(file=out, width=200),
            json_mode=True,
        )
    )
    await wait_until(lambda: "dashboard on " in out.getvalue())
    url = re.search(r"dashboard on (\S+)", out.getvalue())
    assert url is not None
    async with aiohttp.ClientSession() as http:
        async with http.get(url[1] + "api/state") as response:
            video = (await response.json())["sessions"][0]["video"]
        async with http.get(url[1] + video.lstrip("/")) as stream:  # a page shows the video
            loop = asyncio.get_running_loop()
            until = loop.time() + 2.5
            while loop.time() < until:
                await stream.content.readany()
            assert not watching.done()  # watched: not idle
    summary = await asyncio.wait_for(watching, 15)  # nobody watches: stopped 1 s later
    assert summary.ended_by.startswith("idle for 1 s") and 2.5 < summary.duration_s < 8
    with pytest.raises(rt.ConfigError, match="needs a price"):
        await run_watch(server.url, "lucy-2.6", budget_money="1")


def test_cli_dashboard_without_a_url_and_demo_with_web(capsys: pytest.CaptureFixture[str]) -> None:
    from rxrealtime.cli import main

    argv = ["dashboard", "--seconds", "1.5", "--web", ":0", "--json", "--tick-interval", "0.2"]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert json.loads(out.out.splitlines()[-1])["billed_seconds"] > 0
    assert "dashboard on http://127.0.0.1:" in out.err
    assert main(["demo", "--seconds", "1", "--tick-interval", "0.2", "--web", ":0", "--json"]) == 0
    assert "dashboard on http://127.0.0.1:" in capsys.readouterr().err
