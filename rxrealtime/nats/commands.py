"""``rxrealtime fleet`` and ``rxrealtime demo --workers N``: the fleet from the command line.

* ``fleet --nats URL[,URL...] [--budget-s N] [--price MODEL=RATE] [--json] [--durable NAME]``:
  the live fleet view until Ctrl-C (or ``--seconds``). Without ``--durable`` it replays
  the stream and saves nothing; with it, it checkpoints and resumes after a restart.
  ``--cluster N`` first starts a local N-node JetStream cluster on loopback
  (:class:`.LocalNatsCluster`) and prints its URLs for workers to use.
* ``demo --workers N [--nats URL]``: starts a local nats-server with JetStream (unless
  ``--nats`` names one), N worker processes (each an embedded server, sessions with
  random socket drops, a publisher) and the aggregator, shows the fleet live, and ends
  with each worker's server billing beside the fleet's total: they must be equal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from rich.console import Console

from ..exceptions import ConfigError, RealtimeError
from .aggregator import NatsFleet
from .cluster import LocalNatsCluster
from .connection import DEFAULT_URL, connect
from .fleet_factory import fleet
from .server import LocalNatsServer, NatsServerNotFound
from .view import FleetView, totals_json

__all__ = ["read_report", "run_demo", "run_fleet", "run_from_args", "spawn_worker"]


async def _until_stopped(seconds: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


@contextlib.asynccontextmanager
async def _nats_for(url: str | None, cluster: int, console: Console) -> AsyncIterator[str]:
    """The URL(s) to use: ``url`` (default: the local standard port), or those of a
    local ``cluster``-node cluster started here and stopped after the block."""
    if cluster and url:
        raise ConfigError("--cluster starts a local cluster: leave out --nats")
    if cluster:
        async with LocalNatsCluster(cluster) as nodes:
            console.print(
                f"[bold]nats-server[/] JetStream cluster of {cluster} nodes on loopback: "
                f"{nodes.url}",
                soft_wrap=True,  # the URLs on one line, to copy
            )
            yield nodes.url
        return
    yield url or DEFAULT_URL


async def run_fleet(
    url: str | None,
    *,
    cluster: int = 0,
    prefix: str = "rxrealtime",
    durable: str | None = None,
    prices: Mapping[str, str] | None = None,
    rate: str | None = None,
    budget_s: int | None = None,
    json_mode: bool = False,
    seconds: float | None = None,
) -> dict[str, Any]:
    """Show the fleet until stopped; returns the final totals (as the JSON line has them).

    ``url`` may list several servers (comma-separated); ``cluster=N`` starts a local
    N-node cluster instead and shows the fleet on it."""
    async with _nats_for(url, cluster, Console(stderr=True)) as where:
        return await _run_fleet(
            where,
            prefix=prefix,
            durable=durable,
            prices=prices,
            rate=rate,
            budget_s=budget_s,
            json_mode=json_mode,
            seconds=seconds,
        )


async def _run_fleet(
    url: str,
    *,
    prefix: str,
    durable: str | None,
    prices: Mapping[str, str] | None,
    rate: str | None,
    budget_s: int | None,
    json_mode: bool,
    seconds: float | None,
) -> dict[str, Any]:
    nc = await connect(url, name="rxrealtime-fleet-cli")
    try:
        agg = await fleet(
            nc,
            subject_prefix=prefix,
            durable=durable,
            prices=prices or None,
            rate_per_second=rate,
            budget_s=budget_s,
        )
        try:
            async with FleetView(agg, json_mode=json_mode, console=Console(stderr=json_mode)):
                await _until_stopped(seconds)
            final = {**totals_json(agg), "event": "final", "counters": agg.counters}
        finally:
            await agg.close()
    finally:
        await nc.close()
    if json_mode:
        print(json.dumps(final), flush=True)
    return final


async def spawn_worker(
    url: str,
    worker: str,
    *,
    sessions: int,
    seconds: float,
    tick_interval_s: float,
    drops: int,
    prefix: str = "rxrealtime",
    seed: int | None = None,
) -> asyncio.subprocess.Process:
    """Start ``python -m rxrealtime.nats.worker``; its report is the last stdout line."""
    args = [
        "--nats",
        url,
        "--worker",
        worker,
        "--sessions",
        str(sessions),
        "--seconds",
        str(seconds),
        "--tick-interval",
        str(tick_interval_s),
        "--drops",
        str(drops),
        "--prefix",
        prefix,
    ]
    if seed is not None:
        args += ["--seed", str(seed)]
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rxrealtime.nats.worker", *args, stdout=asyncio.subprocess.PIPE
    )


async def read_report(process: asyncio.subprocess.Process) -> dict[str, Any]:
    """Wait for a worker started by :func:`spawn_worker`; its JSON report."""
    out, _ = await process.communicate()
    lines = out.decode(errors="replace").strip().splitlines()
    if process.returncode != 0 or not lines:
        raise RealtimeError(f"a worker failed (exit {process.returncode})")
    report: dict[str, Any] = json.loads(lines[-1])
    return report


async def _caught_up(agg: NatsFleet, expected: dict[str, int], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while agg.billed_by_server_session != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return agg.billed_by_server_session == expected


async def run_demo(
    *,
    workers: int = 3,
    sessions: int = 2,
    seconds: float = 10.0,
    nats_url: str | None = None,
    tick_interval_s: float = 0.5,
    drops: int = 1,
    budget_s: int | None = None,
    rate: str | None = None,
    json_mode: bool = False,
    cluster: int = 0,
) -> dict[str, Any]:
    """Run the multi-process demo; returns the summary (``exact``: fleet == servers).

    ``cluster=N`` runs it on a local N-node JetStream cluster instead of one server."""
    if workers < 1 or sessions < 1:
        raise ConfigError("--workers and --sessions must be >= 1")
    if cluster and nats_url:
        raise ConfigError("--cluster starts a local cluster: leave out --nats")
    console = Console(stderr=json_mode)
    server: LocalNatsServer | LocalNatsCluster | None = None
    if cluster:
        server = await LocalNatsCluster(cluster).start()
    elif not nats_url:
        server = await LocalNatsServer().start()
    url = nats_url or (server.url if server else "")
    started = time.monotonic()
    try:
        if server is not None and not json_mode:
            where = server.root if isinstance(server, LocalNatsCluster) else server.store_dir
            console.print(f"[bold]nats-server[/] -js on {url} (store {where})")
        nc = await connect(url, name="rxrealtime-demo")
        try:
            agg = await fleet(
                nc, durable=None, deliver_new=True, budget_s=budget_s, rate_per_second=rate
            )
            title = f"rxrealtime fleet · {workers} workers x {sessions} sessions · {url}"
            async with FleetView(agg, json_mode=json_mode, console=console, title=title):
                procs = [
                    await spawn_worker(
                        url,
                        f"worker-{i + 1}",
                        sessions=sessions,
                        seconds=seconds,
                        tick_interval_s=tick_interval_s,
                        drops=drops,
                        seed=i,
                    )
                    for i in range(workers)
                ]
                reports = await asyncio.gather(*(read_report(p) for p in procs))
                expected = {sid: s for r in reports for sid, s in r["billed_by_session"].items()}
                exact = await _caught_up(agg, expected, timeout_s=10.0)
            summary = {
                "event": "summary",
                "workers": [
                    {
                        k: r[k]
                        for k in ("worker", "billed_s", "socket_drops", "published", "dropped")
                    }
                    for r in reports
                ],
                "servers_billed_s": sum(expected.values()),
                "fleet_billed_s": agg.total_billed_s,
                "server_sessions": len(expected),
                "exact": exact,
                "stop_commands": agg.counters["commands"],
                "cost": None if agg.totals.value.cost is None else str(agg.totals.value.cost),
                "elapsed_s": round(time.monotonic() - started, 1),
            }
            await agg.close()
        finally:
            await nc.close()
    finally:
        if server is not None:
            await server.close()
    if json_mode:
        print(json.dumps(summary), flush=True)
    else:
        _print_summary(summary, console)
    return summary


def _print_summary(summary: dict[str, Any], console: Console) -> None:
    if not console.is_terminal:  # rich's Live leaves no newline after its last frame there
        console.line()
    for w in summary["workers"]:
        console.print(
            f"  {w['worker']}: its server billed {w['billed_s']} s "
            f"({w['socket_drops']} socket drops, {w['published']} events published)"
        )
    verdict = "[bold green]exact[/]" if summary["exact"] else "[bold red]MISMATCH[/]"
    console.print(
        f"[bold]fleet total {summary['fleet_billed_s']} s[/] over {summary['server_sessions']} "
        f"server sessions; the workers' servers billed {summary['servers_billed_s']} s: {verdict}"
        + (f"; {summary['stop_commands']} stop commands" if summary["stop_commands"] else "")
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``fleet`` or ``demo --workers`` from parsed arguments; returns the exit code."""
    try:
        if args.command == "fleet":
            asyncio.run(
                run_fleet(
                    args.nats,
                    cluster=args.cluster,
                    prefix=args.prefix,
                    durable=args.durable,
                    prices=dict(args.price) or None,
                    budget_s=args.budget_s,
                    json_mode=args.json,
                    seconds=args.seconds,
                )
            )
            return 0
        summary = asyncio.run(
            run_demo(
                workers=args.workers,
                sessions=args.sessions,
                seconds=args.seconds,
                nats_url=args.nats,
                tick_interval_s=args.tick_interval,
                budget_s=args.budget_s,
                rate=args.rate,
                json_mode=args.json,
                cluster=args.cluster,
            )
        )
        return 0 if summary["exact"] else 1
    except NatsServerNotFound as exc:
        print(f"rxrealtime {args.command}: {exc}, or pass --nats URL", file=sys.stderr)
        return 2
    except RealtimeError as exc:
        print(f"rxrealtime {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
