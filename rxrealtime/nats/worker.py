"""A fleet worker process: sessions against its own embedded server, published to NATS.

``python -m rxrealtime.nats.worker --nats URL --worker w1 --sessions 3 --seconds 5``
runs an embedded server (fast ticks), N receive-only sessions on it, a publisher and a
stop-command listener, drops random sockets (the server's fault switch) so sessions
reconnect, and at the end prints one JSON line: what its server billed per server
session, which is what the fleet's total must equal. The demo and the tests start these.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import time
from collections.abc import Sequence
from typing import Any

from ..models import DEFAULT_MODEL
from ..options import ReconnectPolicy
from ..server import serve_embedded
from ..session import Session
from ..states import ConnectionState
from .connection import connect
from .control import obey
from .publisher import publish

__all__ = ["main", "run_worker"]

logger = logging.getLogger(__name__)


async def _drop_randomly(server: Any, count: int, seconds: float, rng: random.Random) -> int:
    """Drop ``count`` random live server sessions' sockets at random times."""
    dropped = 0
    times = sorted(rng.uniform(0.2 * seconds, 0.8 * seconds) for _ in range(count))
    start = time.monotonic()
    for at in times:
        await asyncio.sleep(max(0.0, at - (time.monotonic() - start)))
        live = [sid for sid, s in server.sessions.items() if s.generation_started]
        if live:
            server.drop_session(rng.choice(live))
            dropped += 1
    return dropped


def _note_disconnect(session: Session, publisher: Any, at: dict[str, float]) -> None:
    """Record when ``session`` first disconnects after having a key (for the budget test)."""

    def on_state(state: ConnectionState) -> None:
        key = publisher.key_of(session)
        if state is ConnectionState.DISCONNECTED and key is not None:
            at.setdefault(key, time.time())

    session.connection_changes.subscribe(on_state)


async def run_worker(
    nats_url: str,
    *,
    worker: str,
    sessions: int = 3,
    seconds: float = 3.0,
    tick_interval_s: float = 0.1,
    drops: int = 2,
    seed: int | None = None,
    subject_prefix: str = "rxrealtime",
) -> dict[str, Any]:
    """Run the worker; returns its report (see the module docstring)."""
    rng = random.Random(seed)
    nc = await connect(nats_url, name=f"rxrealtime-worker-{worker}")
    disconnected_at: dict[str, float] = {}
    try:
        async with serve_embedded(tick_interval_s=tick_interval_s) as server:
            fast = ReconnectPolicy(initial_delay_s=0.05, max_delay_s=0.2)
            live = [
                Session(server.url, api_key=server.api_key, model=DEFAULT_MODEL, reconnect=fast)
                for _ in range(sessions)
            ]
            publisher = await publish(live, nc, worker=worker, subject_prefix=subject_prefix)
            obeyer = await obey(live, nc, publisher=publisher)
            for s in live:
                _note_disconnect(s, publisher, disconnected_at)
            stopped: list[str] = []
            obeyer.stopped.subscribe(lambda k: stopped.append(k.key))
            await asyncio.gather(
                *(s.connect(prompt=f"{worker} scene {i}") for i, s in enumerate(live))
            )
            dropper = asyncio.ensure_future(_drop_randomly(server, drops, seconds, rng))
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not all(s.closed for s in live):
                await asyncio.sleep(0.05)
            dropper.cancel()
            keys = [publisher.key_of(s) for s in live]
            await asyncio.gather(*(s.disconnect() for s in live))
            await obeyer.close()
            await publisher.close(timeout_s=10.0)
            report: dict[str, Any] = {
                "worker": worker,
                "keys": keys,
                "published": publisher.published,
                "dropped": publisher.dropped,
                "stopped": stopped,
                "disconnected_at": disconnected_at,
                "socket_drops": server.counters.get("socket_drops", 0),
            }
        report["billed_by_session"] = dict(server.billed_by_session)
        report["billed_s"] = sum(server.billed_by_session.values())
        return report
    finally:
        await nc.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rxrealtime.nats.worker", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--nats", required=True, help="NATS URL")
    parser.add_argument("--worker", required=True, help="worker name (a subject token)")
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--tick-interval", type=float, default=0.1)
    parser.add_argument("--drops", type=int, default=2, help="random socket drops")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--prefix", default="rxrealtime", help="subject prefix")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    report = asyncio.run(
        run_worker(
            args.nats,
            worker=args.worker,
            sessions=args.sessions,
            seconds=args.seconds,
            tick_interval_s=args.tick_interval,
            drops=args.drops,
            seed=args.seed,
            subject_prefix=args.prefix,
        )
    )
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
