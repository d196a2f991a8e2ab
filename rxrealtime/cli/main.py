"""``rxrealtime demo | serve | watch | models | ...``: the command line.

Each subcommand is a small async function; ``main`` only parses arguments and turns a
:class:`~rxrealtime.RealtimeError` into a one-line message and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, get_args

from pydantic import SecretStr, ValidationError
from rich.console import Console

from .._version import __version__
from ..dashboards.web import parse_address
from ..exceptions import ConfigError, RealtimeError
from ..models import DEFAULT_MODEL
from ..options import API_KEY_ENV, describe_validation_error
from ..server import BadFrame, Faults, Media, ServerSettings, serve_embedded
from ._demo import run_demo_command
from ._models import add_model_flags, add_models_command, price_table, run_models
from ._tape import add_tape_commands, run_tape_command
from ._watch import WatchSummary, run_dashboard, run_watch

__all__ = ["main"]


async def run_serve(settings: ServerSettings) -> None:
    async with serve_embedded(settings) as server:
        where = f"rxrealtime server listening on {server.url} (stream path /v1/stream)"
        if server.livekit is not None:
            process = server.livekit.process
            owner = f"livekit-server pid {process.pid}" if process else "given with --livekit-url"
            where += f"; LiveKit at {server.livekit.url} ({owner})"
        print(where, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    # once stopped (every session ended), what it billed, for a caller to compare with
    # its clients' totals: one JSON line on stdout
    billed = dict(server.billed_by_session)
    print(json.dumps({"billed_s": sum(billed.values()), "billed_by_session": billed}), flush=True)


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _rate(text: str) -> str:
    try:
        if Decimal(text) >= 0:
            return text
    except InvalidOperation:
        pass
    raise argparse.ArgumentTypeError("must be a number >= 0 (price per billed second)")


def _price(text: str) -> tuple[str, str]:
    model, sep, rate = text.partition("=")
    if not sep or not model:
        raise argparse.ArgumentTypeError("expected MODEL=RATE, e.g. lucy-2.6=0.01")
    return model, _rate(rate)


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a port number (0 picks a free one)")
    return value


def _print_watch_summary(summary: WatchSummary, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary.as_json()), flush=True)
        return
    console = Console()
    console.print(f"[bold]{summary.describe()}[/]")
    for error in summary.errors[-5:]:
        console.print(f"  [red]error[/]: {error}")


def _add_key_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-key", default=None,
        help=f"the API key (default: ${API_KEY_ENV}); note that other users of this machine "
        "can read it in the process list: prefer --api-key-file or the environment",
    )  # fmt: skip
    parser.add_argument("--api-key-file", default=None, metavar="PATH",
                        help="read the API key from this file (first line)")  # fmt: skip


def _api_key(args: argparse.Namespace) -> str | None:
    """``--api-key-file``, else ``--api-key``, else the environment."""
    if getattr(args, "api_key_file", None):
        try:
            with open(args.api_key_file, encoding="utf-8") as fh:
                return fh.readline().strip() or None
        except OSError as exc:
            raise ConfigError(f"cannot read the API key file: {exc.strerror}") from None
    return args.api_key or os.environ.get(API_KEY_ENV)


def run_check_command(args: argparse.Namespace, key: str | None) -> int:
    """``rxrealtime check URL``: the connectivity report; exit 0 when every step passed."""
    from ..connectivity import check_connectivity, render

    report = asyncio.run(
        check_connectivity(
            args.url,
            api_key=key,
            model=args.model,
            timeout_s=args.timeout,
            transport=args.transport,
        )
    )
    print(report.to_json().decode() if args.json else render(report))
    return 0 if report.ok else 1


def _add_fault_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`Faults` switch (``--drop-socket-after-s 5``, ``--reject-auth``)."""
    group = parser.add_argument_group("fault injection (for tests of clients)")
    for name, info in Faults.model_fields.items():
        flag = "--" + name.replace("_", "-")
        doc = (info.description or "").split(".")[0]
        if info.annotation is bool:
            group.add_argument(
                flag, dest=f"fault_{name}", action="store_true", default=None, help=doc
            )
        elif name == "bad_frames":
            group.add_argument(
                flag, dest=f"fault_{name}", nargs="+", default=None, choices=get_args(BadFrame)
            )
        else:
            group.add_argument(flag, dest=f"fault_{name}", default=None, metavar="X", help=doc)


def _faults_from_args(args: argparse.Namespace) -> Faults:
    given = {
        name: getattr(args, f"fault_{name}")
        for name in Faults.model_fields
        if getattr(args, f"fault_{name}", None) is not None
    }
    return Faults.model_validate(given)


def _add_fleet_arguments(sub: Any, demo: argparse.ArgumentParser) -> None:
    """``demo --workers N --nats URL`` and ``fleet``: the NATS fleet (rxrealtime.nats)."""
    group = demo.add_argument_group("a fleet of worker processes over NATS (rxrealtime[nats])")
    group.add_argument("--workers", type=int, default=0, metavar="N", help="worker processes")
    group.add_argument("--nats", default=None, metavar="URL", help="default: a local nats-server")
    group.add_argument(
        "--cluster", type=int, default=0, metavar="N", help="a local N-node JetStream cluster"
    )
    group.add_argument("--sessions", type=int, default=2, help="sessions per worker")
    group.add_argument("--budget-s", type=int, default=None, help="fleet budget: then stop all")
    fleet = sub.add_parser("fleet", help="the live fleet over NATS: totals, budget guard")
    fleet.add_argument(
        "--nats", default=None, metavar="URL[,URL...]", help="default: nats://127.0.0.1:4222"
    )
    fleet.add_argument(
        "--cluster", type=int, default=0, metavar="N", help="start a local N-node cluster first"
    )
    fleet.add_argument("--budget-s", type=int, default=None, help="stop every session past it")
    fleet.add_argument("--price", type=_price, action="append", default=[], metavar="MODEL=RATE")
    fleet.add_argument("--json", action="store_true", help="JSON lines instead of the table")
    fleet.add_argument("--durable", default=None, help="checkpoint as NAME, resume after restarts")
    fleet.add_argument("--prefix", default="rxrealtime", help="subject prefix")
    fleet.add_argument("--seconds", type=_positive_float, default=None, help="stop after N s")


def _impair(text: str) -> str:
    """``--impair SPEC`` checked while parsing: a bad spec is a usage error (exit 2)."""
    from ..testing.netspec import SpecError, parse_impairment

    try:
        parse_impairment(text)
    except SpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _web(text: str) -> tuple[str, int]:
    try:
        return parse_address(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_spend_flags(parser: argparse.ArgumentParser, web: str | None = None) -> None:
    """Budget, idle guard and web dashboard (``watch`` and ``dashboard``)."""
    group = parser.add_argument_group("spend: budget, idle guard, web dashboard")
    group.add_argument("--budget-s", type=int, default=None, metavar="N",
                       help="budget in billed seconds: alerts at 50/80/100 %%")  # fmt: skip
    group.add_argument("--budget-money", type=_rate, default=None, metavar="X",
                       help="budget in money (needs --rate or --price)")  # fmt: skip
    group.add_argument("--stop-at-budget", action="store_true", help="disconnect at the budget")
    group.add_argument("--idle-stop-s", type=_positive_float, default=None, metavar="N",
                       help="disconnect after N s generating with no prompt change and "
                       "nobody watching the video")  # fmt: skip
    group.add_argument("--web", type=_web, default=web, metavar="HOST:PORT",
                       help=f"serve the web dashboard (default: {web or 'off'}; 127.0.0.1 "
                       "unless a host is given)")  # fmt: skip


def _spend_options(args: argparse.Namespace) -> dict[str, Any]:
    names = ("budget_s", "budget_money", "stop_at_budget", "idle_stop_s", "web")
    return {name: getattr(args, name) for name in names}


def _add_dashboard_parser(sub: Any) -> None:
    """``dashboard [URL]``: watch with the web dashboard on; no URL: the embedded server."""
    dash = sub.add_parser("dashboard", help="the web dashboard of a live session (no URL: "
                          "a session against an embedded server)")  # fmt: skip
    dash.add_argument("url", nargs="?", default=None, help="service base URL (default: embedded)")
    add_model_flags(dash)
    _add_key_flags(dash)
    dash.add_argument("--prompt", default=None, help="initial prompt")
    dash.add_argument("--rate", type=_rate, default=None, help="price per billed second")
    dash.add_argument("--price", type=_price, action="append", default=[],
                      metavar="MODEL[:TIER]=RATE")  # fmt: skip
    dash.add_argument("--seconds", type=_positive_float, default=None, help="stop after N s")
    dash.add_argument("--tick-interval", type=_positive_float, default=1.0,
                      help="the embedded server's tick interval (without a URL)")  # fmt: skip
    dash.add_argument("--json", action="store_true", help="end with one JSON summary line")
    _add_spend_flags(dash, web="127.0.0.1:8080")


def _run_fleet_command(args: argparse.Namespace) -> int:
    try:
        from ..nats.commands import run_from_args
    except ImportError as exc:  # the nats extra is not installed
        print(f"rxrealtime {args.command}: {exc}", file=sys.stderr)
        return 2
    return run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rxrealtime", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"rxrealtime {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run a live session against the embedded server")
    demo.add_argument("--seconds", type=_positive_float, default=10.0)
    demo.add_argument("--json", action="store_true", help="end with one JSON summary line")
    demo.add_argument("--record", metavar="OUT.mp4", help="record the generated video")
    demo.add_argument("--tick-interval", type=_positive_float, default=1.0)
    demo.add_argument("--plot", metavar="BILLING.png", help="draw billed seconds and cost")
    demo.add_argument("--rate", type=_rate, default=None, help="price per billed second")
    demo.add_argument("--tape", metavar="FILE", help="record a session tape (.gz: gzip)")
    demo.add_argument("--web", type=_web, metavar="HOST:PORT", help="serve the web dashboard")
    demo.add_argument(
        "--impair",
        type=_impair,
        metavar="SPEC",
        help="run across a real impaired link, e.g. loss=10%%,rate=500kbit,blackhole=4s@8s "
        "(needs root and ip, tc, nft)",
    )
    demo.add_argument(
        "--transport", choices=("aiortc", "livekit"), default="aiortc",
        help="media through a direct peer or a LiveKit room (make livekit)",
    )  # fmt: skip
    _add_fleet_arguments(sub, demo)

    serve = sub.add_parser("serve", help="run the reference server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    _add_key_flags(serve)
    serve.add_argument("--tick-interval", type=_positive_float, default=1.0)
    serve.add_argument("--credits-s", type=int, default=None)
    serve.add_argument("--max-frame-bytes", type=int, default=None)
    serve.add_argument(
        "--media",
        choices=get_args(Media),
        default="aiortc",
        help="livekit: answer livekit_join with a LiveKit room (default: aiortc offers only)",
    )
    serve.add_argument("--livekit-url", help="an existing LiveKit server (default: start one)")
    serve.add_argument("--livekit-key", help="its API key")
    serve.add_argument("--livekit-secret", help="its API secret (default: $LIVEKIT_API_SECRET)")
    serve.add_argument("--tape", metavar="FILE", help="play this tape's server side to clients")
    _add_fault_flags(serve)

    watch = sub.add_parser("watch", help="watch a session on any server: live view, metrics")
    watch.add_argument("url", help="service base URL (ws://, wss://, http(s)://)")
    add_model_flags(watch, required=True)
    _add_key_flags(watch)
    watch.add_argument("--transport", choices=("aiortc", "livekit"), default="aiortc",
                       help="media through a direct peer or a LiveKit room (the service's "
                       "current way; pip install 'rxrealtime[livekit]')")  # fmt: skip
    watch.add_argument("--video", metavar="FILE", help="send this file (default: synthetic)")
    watch.add_argument("--metrics-port", type=_port, default=None, help="serve /metrics here")
    watch.add_argument("--prompt", default=None, help="initial prompt")
    watch.add_argument("--rate", type=_rate, default=None,
                       help="standard price per billed second (a fast tier: 2x)")  # fmt: skip
    watch.add_argument(
        "--price", type=_price, action="append", default=[], metavar="MODEL[:TIER]=RATE",
        help="per-model price table (repeatable); the watched model's entry is used, at its "
        "tier (lucy-2.6:fast=X prices a tier of its own; else 2x the model's)",
    )  # fmt: skip
    watch.add_argument("--seconds", type=_positive_float, default=None, help="stop after N s")
    watch.add_argument("--plot", metavar="BILLING.png", help="draw billed seconds and cost")
    watch.add_argument("--json", action="store_true", help="end with one JSON summary line")
    watch.add_argument("--tape", metavar="FILE", help="record a session tape (.gz: gzip)")
    _add_spend_flags(watch)
    _add_dashboard_parser(sub)

    check = sub.add_parser("check", help="check connectivity before anything is billed")
    check.add_argument("url", help="service base URL (ws://, wss://, http(s)://)")
    check.add_argument("--model", default=DEFAULT_MODEL)
    _add_key_flags(check)
    check.add_argument("--transport", choices=("aiortc", "livekit"), default="aiortc")
    check.add_argument("--timeout", type=_positive_float, default=10.0, help="per check, in s")
    check.add_argument("--json", action="store_true", help="the report as one JSON object")

    add_tape_commands(sub)
    add_models_command(sub)
    from .bench import add_arguments as add_bench_arguments  # light: suites load on demand

    add_bench_arguments(sub.add_parser("bench", help="run the benchmark suite"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "bench":
        from .bench import run_from_args

        return run_from_args(args)
    if args.command == "fleet" or (args.command == "demo" and args.workers):
        return _run_fleet_command(args)
    try:
        if args.command == "models":
            return run_models(args)
        if args.command in ("tape", "replay"):
            return run_tape_command(args)
        if args.command == "demo":
            return run_demo_command(args)
        if args.command == "serve":
            key = _api_key(args)
            if not key:
                print(f"rxrealtime serve: pass --api-key-file or --api-key, or set {API_KEY_ENV}",
                      file=sys.stderr)  # fmt: skip
                return 2
            try:
                extra: dict[str, Any] = (
                    {}
                    if args.max_frame_bytes is None
                    else {"max_frame_bytes": args.max_frame_bytes}
                )
                if args.livekit_url or args.livekit_key or args.livekit_secret:
                    secret = args.livekit_secret or os.environ.get("LIVEKIT_API_SECRET")
                    extra.update(
                        livekit_url=args.livekit_url,
                        livekit_key=args.livekit_key,
                        livekit_secret=SecretStr(secret) if secret else None,
                    )
                settings = ServerSettings(
                    host=args.host,
                    port=args.port,
                    api_key=SecretStr(key),
                    tick_interval_s=args.tick_interval,
                    credits_s=args.credits_s,
                    faults=_faults_from_args(args),
                    media=args.media,
                    tape=args.tape,
                    **extra,
                )
            except ValidationError as exc:
                print(
                    f"rxrealtime serve: invalid settings: {describe_validation_error(exc)}",
                    file=sys.stderr,
                )
                return 2
            asyncio.run(run_serve(settings))
            return 0
        if args.command == "check":
            return run_check_command(args, _api_key(args))
        if args.command == "watch":
            summary = asyncio.run(
                run_watch(
                    args.url,
                    args.model,
                    api_key=_api_key(args),
                    transport=args.transport,
                    video=args.video,
                    metrics_port=args.metrics_port,
                    rate_per_second=args.rate,
                    prices=price_table(args),
                    speed=args.speed,
                    prompt=args.prompt,
                    seconds=args.seconds,
                    plot=args.plot,
                    json_mode=args.json,
                    tape=args.tape,
                    **_spend_options(args),
                )
            )
            _print_watch_summary(summary, args.json)
            return 0
        if args.command == "dashboard":
            options = _spend_options(args) | {"api_key": _api_key(args), "json_mode": args.json}
            options |= {"rate_per_second": args.rate, "prices": price_table(args)}
            options |= {"prompt": args.prompt, "speed": args.speed}
            options["seconds"] = args.seconds
            run = run_dashboard(args.url, args.model, args.tick_interval, **options)
            _print_watch_summary(asyncio.run(run), args.json)
            return 0
    except RealtimeError as exc:
        print(f"rxrealtime {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a path that cannot be written, a port that cannot be bound
        print(f"rxrealtime {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
