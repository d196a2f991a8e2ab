"""``rxrealtime demo``: one live session against the embedded server, and its report."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from ..dashboards import BillingLog, TerminalDashboard, plot_billing
from ..dashboards.plot import require_matplotlib
from ..dashboards.web import serve
from ..media import SyntheticTrack, record
from ..models import DEFAULT_MODEL
from ..server import serve_embedded
from ..session import Session
from ..tapes import TapeRecorder

__all__ = ["DemoReport", "print_summary", "run_demo"]


@dataclass
class DemoReport:
    """What ``rxrealtime demo`` observed, built only from the session's streams."""

    state_changes: list[str] = field(default_factory=list)
    ticks: int = 0
    billed_seconds: int = 0
    frames_received: int = 0
    prompt_acks: int = 0
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "state_changes": self.state_changes,
            "ticks": self.ticks,
            "billed_seconds": self.billed_seconds,
            "frames_received": self.frames_received,
            "prompt_acks": self.prompt_acks,
            "errors": self.errors,
        }


def _observe(session: Session, report: DemoReport) -> None:
    def on_tick(seconds: int) -> None:
        report.ticks += 1
        report.billed_seconds = seconds

    def on_frame(_: object) -> None:
        report.frames_received += 1

    def on_ack(_: object) -> None:
        report.prompt_acks += 1

    session.connection_changes.subscribe(lambda s: report.state_changes.append(str(s)))
    session.generation_ticks.subscribe(lambda t: on_tick(t.seconds))
    session.frames.subscribe(on_frame)
    session.prompt_acks.subscribe(on_ack)
    session.errors.subscribe(lambda e: report.errors.append(f"{type(e).__name__}: {e}"))


async def run_demo(
    seconds: float,
    as_json: bool,
    record_path: str | None,
    tick_interval_s: float = 1.0,
    plot_path: str | None = None,
    rate_per_second: str | None = None,
    transport: str = "aiortc",
    tape: str | None = None,
    web: tuple[str, int] | None = None,
) -> DemoReport:
    """Run a session against the embedded server, change the prompt halfway, report.

    With ``transport="livekit"`` the embedded server runs in LiveKit mode (a loopback
    livekit-server, see ``make livekit``) and the session joins its rooms. With ``tape``
    the session is recorded to that tape (:mod:`rxrealtime.tapes`)."""
    if plot_path:
        require_matplotlib()  # fail before the session, not after it
    console = Console(stderr=as_json)
    report = DemoReport()
    prompts = ("anime", "cyberpunk city")
    media = "livekit" if transport == "livekit" else "aiortc"
    async with serve_embedded(tick_interval_s=tick_interval_s, media=media) as server:
        session = Session(server.url, api_key=server.api_key, model=DEFAULT_MODEL,
                          transport=transport)  # fmt: skip
        _observe(session, report)
        tape_recorder = TapeRecorder(session, tape, video=record_path).start() if tape else None
        log = BillingLog.record(session, rate_per_second=rate_per_second) if plot_path else None
        view = TerminalDashboard(
            session,
            rate_per_second=rate_per_second,
            console=console,
            transient=as_json,
            title=f"rxrealtime demo · {session.model.name}",
            extra_rows=lambda: [("prompt acks", str(report.prompt_acks))],
        )
        current = prompts[0]
        page: Any = contextlib.nullcontext()
        if web is not None:  # the web dashboard (rxrealtime.dashboards.web) on (host, port)
            page = await serve(session, *web, rate_per_second=rate_per_second)
            console.print(f"dashboard on {page.url}")
        async with page, session.connect(local_track=SyntheticTrack(), prompt=current):
            recording = (
                record(session.frames, record_path) if record_path else contextlib.nullcontext()
            )
            async with recording:
                with view:
                    await asyncio.sleep(seconds / 2)
                    current = prompts[1]
                    await session.set_prompt(current)
                    await asyncio.sleep(seconds / 2)
    if tape_recorder is not None:
        await tape_recorder.close()
    if log is not None and plot_path is not None:
        log.stop()
        plot_billing(log, plot_path, title=f"rxrealtime demo · {session.model.name}")
    return report


def print_summary(report: DemoReport, console: Console) -> None:
    if not console.is_terminal:  # rich's Live leaves no newline after its last frame there
        console.line()
    console.print(
        f"[bold]summary[/]: states {' → '.join(report.state_changes)}; "
        f"{report.ticks} ticks, {report.billed_seconds} s billed, "
        f"{report.frames_received} frames received, {report.prompt_acks} prompt acks, "
        f"{len(report.errors)} errors"
    )
    for error in report.errors:
        console.print(f"  [red]error[/]: {error}")
