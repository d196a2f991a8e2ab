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
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiortc import MediaStreamTrack
from rich.console import Console

from .dashboards import BillingLog, PrometheusExporter, TerminalDashboard, plot_billing
from .dashboards.plot import require_matplotlib
from .exceptions import ConfigError, RealtimeError
from .fleet import Fleet
from .media import SyntheticTrack
from .session import ConnectionState, Session
from .tapes import TapeRecorder

__all__ = ["WatchSummary", "run_watch"]

logger = logging.getLogger(__name__)


@dataclass
class WatchSummary:
    """The final billing summary of a watch, from the session's streams only."""

    url: str
    model: str
    session_ids: list[str] = field(default_factory=list)
    billed_seconds: int = 0
    ticks: int = 0
    cost: str | None = None
    duration_s: float = 0.0
    ended_by: str = ""
    errors: list[str] = field(default_factory=list)

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
    prompt: str | None = None,
    seconds: float | None = None,
    plot: str | None = None,
    console: Console | None = None,
    json_mode: bool = False,
    transport: str = "aiortc",
    tape: str | None = None,
) -> WatchSummary:
    """Watch a session until SIGINT/SIGTERM, ``seconds`` elapse, or it ends for good;
    with ``tape``, record it to that tape (:mod:`rxrealtime.tapes`)."""
    if plot:
        require_matplotlib()
    session = Session(url, api_key=api_key, model=model, transport=transport)
    track = open_video(video) if video else SyntheticTrack()
    console = console or Console(stderr=json_mode)
    summary = WatchSummary(url=session.url, model=session.model.name)
    session.session_started.subscribe(lambda info: summary.session_ids.append(info.sid))
    session.errors.subscribe(lambda e: summary.errors.append(f"{type(e).__name__}: {e}"))
    recorder = TapeRecorder(session, tape).start() if tape else None

    fleet = Fleet(rate_per_second=rate_per_second)
    exporter = PrometheusExporter(fleet)
    exporter.watch(session)
    log = BillingLog.record(session, rate_per_second=rate_per_second) if plot else None
    view = TerminalDashboard(
        session, rate_per_second=rate_per_second, console=console, transient=json_mode
    )

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
