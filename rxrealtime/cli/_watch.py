"""``rxrealtime watch``: any docs/protocol.md server, live view, metrics, billing summary.

Kept out of ``cli.py`` so the command is a plain coroutine that tests and other programs
can run; ``cli.py`` only parses arguments and prints the summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiortc import MediaStreamTrack
from reactivex.disposable import CompositeDisposable
from rich.console import Console

from .. import operators as rto
from ..billing import resolve_rate
from ..dashboards import BillingLog, PrometheusExporter, TerminalDashboard, plot_billing
from ..dashboards.plot import require_matplotlib
from ..dashboards.web import WebDashboard, serve
from ..exceptions import ConfigError, RealtimeError
from ..fleet import Fleet
from ..media import SyntheticTrack
from ..models import DEFAULT_MODEL
from ..session import ConnectionState, Session
from ..tapes import TapeRecorder

__all__ = ["WatchSummary", "run_dashboard", "run_watch"]

logger = logging.getLogger(__name__)


@dataclass
class WatchSummary:
    """The final billing summary of a watch, from the session's streams only."""

    url: str
    model: str
    tier: str = "standard"
    """The speed tier the session was billed at (``session.tier``)."""
    session_ids: list[str] = field(default_factory=list)
    billed_seconds: int = 0
    ticks: int = 0
    cost: str | None = None
    duration_s: float = 0.0
    ended_by: str = ""
    errors: list[str] = field(default_factory=list)
    budget_alerts: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        cost = f", cost {self.cost}" if self.cost is not None else ""
        return (
            f"billing summary: {self.billed_seconds} s billed over {self.ticks} ticks{cost} "
            f"in {self.duration_s:.1f} s, {len(self.session_ids)} server session(s), "
            f"{len(self.errors)} error(s); ended by {self.ended_by}"
        )


def open_video(path: str) -> MediaStreamTrack:
    """The video track of a media file, via aiortc's ``MediaPlayer`` (looped)."""
    from aiortc.contrib.media import MediaPlayer

    if not Path(path).is_file():
        raise ConfigError(f"video file not found: {path}")
    try:
        player = MediaPlayer(path, loop=True)
    except Exception as exc:  # av raises its own error types for unreadable files
        raise ConfigError(f"cannot open video {path}: {exc}") from None
    if player.video is None:
        raise ConfigError(f"{path} has no video track")
    track: MediaStreamTrack = player.video
    return track


async def run_watch(
    url: str,
    model: str,
    *,
    api_key: str | None = None,
    video: str | None = None,
    metrics_port: int | None = None,
    rate_per_second: str | None = None,
    prices: dict[str, str] | None = None,
    speed: str | None = None,
    prompt: str | None = None,
    seconds: float | None = None,
    plot: str | None = None,
    console: Console | None = None,
    json_mode: bool = False,
    transport: str = "aiortc",
    tape: str | None = None,
    budget_s: int | None = None,
    budget_money: str | None = None,
    stop_at_budget: bool = False,
    idle_stop_s: float | None = None,
    web: tuple[str, int] | None = None,
) -> WatchSummary:
    """Watch a session until SIGINT/SIGTERM, ``seconds`` elapse, or it ends for good;
    with ``tape``, record it to that tape (:mod:`rxrealtime.tapes`).

    ``rate_per_second`` (a standard rate) or ``prices`` (a table) price the session at
    its speed tier (``speed`` asks the service for one; ``session.tier`` is what it is
    billed at, see :func:`rxrealtime.billing.resolve_rate`). ``budget_s`` /
    ``budget_money`` (which needs a price) print budget alerts
    at 50, 80 and 100 % and show the budget in every view; ``stop_at_budget`` then ends
    the session at the limit. ``idle_stop_s`` ends a session generating with no prompt
    change and nobody watching its video for that long. ``web`` serves the web dashboard
    on ``(host, port)``."""
    if plot:
        require_matplotlib()
    if budget_money is not None and rate_per_second is None and prices is None:
        raise ConfigError("a money budget needs a price: --rate or --price")
    if stop_at_budget and budget_s is None and budget_money is None:
        raise ConfigError("--stop-at-budget needs --budget-s or --budget-money")
    session = Session(url, api_key=api_key, model=model, transport=transport, speed=speed)
    price: dict[str, Any] = {"rate_per_second": rate_per_second, "prices": prices}
    resolve_rate(**price, model=session.model.name, tier=session.tier)  # fail before any I/O
    track = open_video(video) if video else SyntheticTrack()
    console = console or Console(stderr=json_mode)
    summary = WatchSummary(url=session.url, model=session.model.name, tier=session.tier)
    session.session_started.subscribe(lambda info: summary.session_ids.append(info.sid))
    session.errors.subscribe(lambda e: summary.errors.append(f"{type(e).__name__}: {e}"))
    recorder = TapeRecorder(session, tape).start() if tape else None

    fleet = Fleet(**price)
    budget: dict[str, Any] = {"budget_s": budget_s, "budget_cost": budget_money}
    exporter = PrometheusExporter(fleet, **budget)
    exporter.watch(session)
    log = BillingLog.record(session, **price) if plot else None
    view = TerminalDashboard(session, **price, console=console, transient=json_mode, **budget)
    dashboard: WebDashboard | None = None

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reason = "interrupt"

    def finish(why: str) -> None:
        nonlocal reason
        if not stop.is_set():
            reason = why
            stop.set()

    connected = False

    def on_state(state: ConnectionState) -> None:
        if state is ConnectionState.DISCONNECTED and connected:
            finish("session ended")

    session.connection_changes.subscribe(on_state)

    def viewers() -> int:  # the only viewers of a watch's video are the web page's
        return dashboard.viewers if dashboard is not None else 0

    guards = _arm_guards(
        session, console, summary, finish, budget_s=budget_s, budget_money=budget_money,
        price=price, stop_at_budget=stop_at_budget, idle_stop_s=idle_stop_s,
        viewers=viewers,
    )  # fmt: skip
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, finish, "SIGINT" if sig == signal.SIGINT else "SIGTERM")
            installed.append(sig)
    timer = loop.call_later(seconds, finish, "time limit") if seconds else None
    start = time.monotonic()
    stopping: asyncio.Future[Any] | None = None
    try:
        if metrics_port is not None:
            await exporter.start(metrics_port)
            console.print(f"metrics on {exporter.url}")
        if web is not None:
            dashboard = await serve(fleet, *web, **budget)
            console.print(f"dashboard on {dashboard.url}")
        view.start()
        connecting = asyncio.ensure_future(session.connect(local_track=track, prompt=prompt))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if connecting.done():
            connecting.result()  # raise a connect failure
            connected = True
            await stopping
        else:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, RealtimeError):
                await connecting
    finally:
        if stopping is not None:
            stopping.cancel()
        if timer is not None:
            timer.cancel()
        for sig in installed:
            loop.remove_signal_handler(sig)
        await session.disconnect()
        guards.dispose()
        if dashboard is not None:
            await dashboard.stop()
        if recorder is not None:
            await recorder.close()
        view.stop()
        await exporter.stop()
        with contextlib.suppress(Exception):
            track.stop()
    summary.ended_by = reason
    summary.duration_s = round(time.monotonic() - start, 3)
    summary.billed_seconds = view.billed_s
    summary.ticks = view.ticks
    cost: Decimal | None = view.cost
    summary.cost = None if cost is None else f"{cost:f}"
    if log is not None and plot is not None:
        log.stop()
        plot_billing(log, plot, title=f"rxrealtime watch · {session.model.name}")
    return summary


def _arm_guards(
    session: Session,
    console: Console,
    summary: WatchSummary,
    finish: Callable[[str], None],
    *,
    budget_s: int | None,
    budget_money: str | None,
    price: dict[str, Any],
    stop_at_budget: bool,
    idle_stop_s: float | None,
    viewers: Callable[[], int],
) -> CompositeDisposable:
    """Budget alerts (printed and kept in the summary), the budget guard and the idle
    guard, each ending the watch with its reason when it stops the session. ``price``
    (a flat rate or a table) is taken at the session's model and tier."""
    guards = CompositeDisposable()
    model = session.model.name if price.get("prices") is not None else None
    price = {**price, "model": model, "tier": session.tier}
    billed = session.generation_ticks.pipe(rto.billed_seconds(resets=session.session_started))
    if budget_s is not None or budget_money is not None:

        def on_alert(alert: rto.BudgetAlert) -> None:
            cost = "" if alert.cost is None else f", cost {alert.cost:f}"
            text = f"budget {alert.threshold:.0%} reached: {alert.billed_s} s billed{cost}"
            summary.budget_alerts.append(text)
            console.print(f"[bold yellow]{text}[/]")

        alerts = rto.budget_alert(budget_s, budget_money, **price)
        guards.add(billed.pipe(alerts).subscribe(on_alert))
        if stop_at_budget:
            guard = rto.budget_guard(session, budget_s, budget_money, **price)
            guards.add(billed.pipe(guard).subscribe(lambda _: finish("budget reached")))
    if idle_stop_s:
        idle = rto.idle_guard(session, idle_stop_s, viewers=viewers)
        guards.add(
            session.generation_ticks.pipe(idle).subscribe(
                lambda _: finish(f"idle for {idle_stop_s:g} s (no prompt change, no viewer)")
            )
        )
    return guards


async def run_dashboard(
    url: str | None, model: str | None, tick_interval_s: float = 1.0, **options: Any
) -> WatchSummary:
    """``rxrealtime dashboard``: :func:`run_watch` with the web dashboard on; without a
    URL, the watched session runs against an embedded server started for it."""
    if url is not None:
        if model is None:
            raise ConfigError("watching a service needs --model")
        return await run_watch(url, model, **options)
    from ..server import serve_embedded

    async with serve_embedded(tick_interval_s=tick_interval_s) as server:
        options["api_key"] = server.api_key
        options.setdefault("web", ("127.0.0.1", 8080))
        return await run_watch(server.url, model or DEFAULT_MODEL, **options)
