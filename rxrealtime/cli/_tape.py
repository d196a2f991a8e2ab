"""``rxrealtime tape show FILE`` and ``rxrealtime replay FILE``: a tape's summary, and
the live terminal view driven by a tape instead of a session.

Kept out of ``cli.py`` like ``_watch.py``: plain functions that tests and programs can
call; ``cli.py`` only adds the arguments and calls :func:`run_tape_command`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from typing import TYPE_CHECKING, Any, cast

from rich.console import Console

from ..dashboards import TerminalDashboard
from ..tapes import Replay, load, summarize

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["add_tape_commands", "run_replay", "run_tape_command", "show_tape"]


def add_tape_commands(sub: Any) -> None:
    """``tape show FILE [--json] [--no-timeline]`` and ``replay FILE [--speed N]``."""
    tape = sub.add_parser("tape", help="inspect a session tape (rxrealtime.tapes)")
    tape_sub = tape.add_subparsers(dest="tape_command", required=True)
    show = tape_sub.add_parser("show", help="summary and timeline of a tape")
    show.add_argument("file", help="a tape (.tape.jsonl, or .gz)")
    show.add_argument("--json", action="store_true", help="the summary as one JSON object")
    show.add_argument("--no-timeline", action="store_true", help="the summary only")
    replay = sub.add_parser("replay", help="the live terminal view, driven by a tape")
    replay.add_argument("file", help="a tape (.tape.jsonl, or .gz)")
    replay.add_argument("--speed", type=float, default=1.0, help="N times real time")
    replay.add_argument("--rate", default=None, help="price per billed second (a cost row)")


def run_tape_command(args: argparse.Namespace) -> int:
    if args.command == "tape":
        return show_tape(args.file, as_json=args.json, timeline=not args.no_timeline)
    print(asyncio.run(run_replay(args.file, speed=args.speed, rate_per_second=args.rate)))
    return 0


def show_tape(path: str, *, as_json: bool = False, timeline: bool = True) -> int:
    """Print a tape's summary (raises :class:`~rxrealtime.tapes.TapeError`)."""
    summary = summarize(load(path))
    print(json.dumps(summary.as_json()) if as_json else summary.render(timeline))
    return 0


async def run_replay(
    path: str,
    *,
    speed: float = 1.0,
    rate_per_second: str | None = None,
    console: Console | None = None,
) -> str:
    """Play ``path`` in real time (times ``speed``) through the terminal view; returns
    the closing line. Ctrl-C ends it early."""
    tape = load(path)
    replay = Replay(tape, speed=speed)
    view = TerminalDashboard(
        cast("Session", replay),  # a Replay has everything the view reads of a Session
        rate_per_second=rate_per_second,
        console=console,
        title=f"rxrealtime replay · {replay.model.name} · {speed:g}x",
    )
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(replay.disconnect()))
            installed.append(sig)
    try:
        with view:
            await replay.wait_closed()
        if not view.console.is_terminal:  # rich's Live leaves no newline after its last frame
            view.console.line()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    played = tape.duration_s if not replay.disconnect_requests else replay.position_s
    cost = "" if view.cost is None else f", cost {view.cost:f}"
    return (
        f"replayed {played:.1f} s of {tape.path} at {speed:g}x: {view.billed_s} s billed "
        f"over {view.ticks} ticks{cost}, {view.error_count} error(s)"
    )
