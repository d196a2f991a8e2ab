"""``rxrealtime demo``: one live session against the embedded server, and its report.

With ``--impair SPEC`` the server sits on the far end of a real impaired link
(:mod:`._impair`) and the report adds what the session measured of that network.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from ..dashboards import BillingLog, TerminalDashboard, plot_billing
from ..dashboards.plot import require_matplotlib
from ..dashboards.web import listen, serve
from ..exceptions import ConfigError
from ..media import SyntheticTrack, record
from ..models import DEFAULT_MODEL
from ..operators import billed_seconds
from ..server import EmbeddedServer, serve_embedded
from ..session import Session
from ..tapes import TapeRecorder
from ..testing import ImpairedNetwork, Impairment
from ._impair import NetworkWatch, check_impairment, impaired_server

__all__ = ["DemoReport", "print_summary", "run_demo", "run_demo_command"]


@dataclass
class DemoReport:
    """What ``rxrealtime demo`` observed, built only from the session's streams."""

    state_changes: list[str] = field(default_factory=list)
    ticks: int = 0
    billed_seconds: int = 0
    frames_received: int = 0
    prompt_acks: int = 0
    errors: list[str] = field(default_factory=list)
    server_billed_seconds: int | None = None
    """What the server billed (every server session it ran), for comparison."""
    network: NetworkWatch | None = None
    """With ``--impair``: what the session measured of the impaired network."""

    @property
    def ok(self) -> bool:
        """Ticks and frames arrived, and: on a perfect link no error at all; on an impaired
        one, errors are the faults asked for (a lost link, retried), so billing must agree
        with the server's instead."""
        alive = self.ticks > 0 and self.frames_received > 0
        if self.network is None:
            return alive and not self.errors
        return alive and self.billed_seconds == self.server_billed_seconds

    def as_json(self) -> dict[str, Any]:
        return {
            "state_changes": self.state_changes,
            "ticks": self.ticks,
            "billed_seconds": self.billed_seconds,
            "server_billed_seconds": self.server_billed_seconds,
            "frames_received": self.frames_received,
            "prompt_acks": self.prompt_acks,
            "errors": self.errors,
            **({} if self.network is None else {"network": self.network.as_json()}),
        }


def _observe(session: Session, report: DemoReport) -> None:
    def on_tick(_: object) -> None:
        report.ticks += 1

    def on_total(seconds: int) -> None:
        report.billed_seconds = seconds

    def on_frame(_: object) -> None:
        report.frames_received += 1

    def on_ack(_: object) -> None:
        report.prompt_acks += 1

    session.connection_changes.subscribe(lambda s: report.state_changes.append(str(s)))
    session.generation_ticks.subscribe(on_tick)
    # ticks restart at 0 with each server session (a reconnect): the running total
    session.generation_ticks.pipe(billed_seconds(resets=session.session_started)).subscribe(
        on_total
    )
    session.frames.subscribe(on_frame)
    session.prompt_acks.subscribe(on_ack)
    session.errors.subscribe(lambda e: report.errors.append(f"{type(e).__name__}: {e}"))


@contextlib.asynccontextmanager
async def _server(
    impairment: Impairment | None, tick_interval_s: float, media: str
) -> AsyncIterator[tuple[EmbeddedServer, ImpairedNetwork | None]]:
    """The embedded server here, or on the far end of the impaired link (and the link)."""
    settings: dict[str, Any] = {"tick_interval_s": tick_interval_s, "media": media}
    if impairment is None:
        async with serve_embedded(**settings) as server:
            yield server, None
    else:
        async with impaired_server(impairment, **settings) as (net, server):
            yield server, net


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
    impair: str | Impairment | None = None,
) -> DemoReport:
    """Run a session against the embedded server, change the prompt halfway, report.

    With ``transport="livekit"`` the embedded server runs in LiveKit mode (a loopback
    livekit-server, see ``make livekit``) and the session joins its rooms. With ``tape``
    the session is recorded to that tape (:mod:`rxrealtime.tapes`). With ``impair``
    (``"loss=10%,rate=500kbit,blackhole=4s@8s"``) the server runs across an impaired
    link (needs root, ``ip``, ``tc``, ``nft``: checked, like the spec, before any I/O)."""
    if plot_path:
        require_matplotlib()  # fail before the session, not after it
    impairment = None
    if impair is not None:
        if transport != "aiortc":
            raise ConfigError("--impair needs --transport aiortc: LiveKit's SDK cannot move "
                              "into the impaired network within one process (its own "
                              "threads make its sockets)")  # fmt: skip
        impairment = check_impairment(impair)
    console = Console(stderr=as_json)
    report = DemoReport()
    prompts = ("anime", "cyberpunk city")
    media = "livekit" if transport == "livekit" else "aiortc"
    # the page's socket is opened here, before an impaired network moves this thread into
    # its client namespace: a socket stays where it was made, reachable from this machine
    listener = listen(*web) if web is not None else None
    try:
        async with _server(impairment, tick_interval_s, media) as (server, net):
            session = Session(server.url, api_key=server.api_key, model=DEFAULT_MODEL,
                              transport=transport)  # fmt: skip
            _observe(session, report)
            title = f"rxrealtime demo · {session.model.name}"
            if impairment is not None:
                report.network = NetworkWatch(impairment.describe()).start(session)
                title += f" · network {impairment.describe()}"
            tape_recorder = TapeRecorder(session, tape, video=record_path).start() if tape else None
            log = BillingLog.record(session, rate_per_second=rate_per_second) if plot_path else None
            watch = report.network

            def rows() -> list[tuple[str, str]]:
                extra = [("prompt acks", str(report.prompt_acks))]
                return extra + (watch.rows() if watch is not None else [])

            view = TerminalDashboard(session, rate_per_second=rate_per_second, console=console,
                                     transient=as_json, title=title, extra_rows=rows)  # fmt: skip
            current = prompts[0]
            page: Any = contextlib.nullcontext()
            if listener is not None:  # the web dashboard (rxrealtime.dashboards.web)
                page = await serve(session, sock=listener, rate_per_second=rate_per_second,
                                   title=title)  # fmt: skip
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
                if watch is not None:
                    watch.stop()
            if watch is not None and net is not None:
                watch.link = (await net.totals())["server"]
        # the server has stopped: every server session is closed and its total recorded
        report.server_billed_seconds = sum(server.billed_by_session.values())
    finally:
        if listener is not None:
            listener.close()
    if tape_recorder is not None:
        await tape_recorder.close()
    if log is not None and plot_path is not None:
        log.stop()
        plot_billing(log, plot_path, title=f"rxrealtime demo · {session.model.name}")
    return report


def run_demo_command(args: argparse.Namespace) -> int:
    """``rxrealtime demo``: run it, print the summary (or one JSON line); 0 when it went
    well (:attr:`DemoReport.ok`)."""
    if args.record and not os.path.isdir(os.path.dirname(os.path.abspath(args.record))):
        print(f"rxrealtime demo: cannot record to {args.record}: no such directory",
              file=sys.stderr)  # fmt: skip
        return 2
    report = asyncio.run(
        run_demo(
            args.seconds,
            args.json,
            args.record,
            args.tick_interval,
            plot_path=args.plot,
            rate_per_second=args.rate,
            transport=args.transport,
            tape=args.tape,
            web=args.web,
            impair=args.impair,
        )
    )
    if args.json:
        print(json.dumps(report.as_json()))
    else:
        print_summary(report, Console())
    if not report.ok and not args.json:
        why = "errors occurred" if report.network is None else "billing differs from the server's"
        print(f"demo failed: no ticks or frames, or {why}", file=sys.stderr)
    return 0 if report.ok else 1


def print_summary(report: DemoReport, console: Console) -> None:
    if not console.is_terminal:  # rich's Live leaves no newline after its last frame there
        console.line()
    console.print(
        f"[bold]summary[/]: states {' → '.join(report.state_changes)}; "
        f"{report.ticks} ticks, {report.billed_seconds} s billed, "
        f"{report.frames_received} frames received, {report.prompt_acks} prompt acks, "
        f"{len(report.errors)} errors; the server billed {report.server_billed_seconds} s"
    )
    if report.network is not None:
        console.print(report.network.describe())
        link = report.network.describe_link()
        if link is not None:
            console.print(link)
    for error in report.errors:
        console.print(f"  [red]error[/]: {error}")
