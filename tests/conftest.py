"""Shared fixtures: the real embedded server on a free loopback port, and sessions on it."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import rxrealtime as rt


@pytest.fixture
async def server() -> AsyncIterator[rt.EmbeddedServer]:
    async with rt.serve_embedded(tick_interval_s=0.2) as srv:
        yield srv


class Recorder:
    """Collects every value of every stream of a session, for assertions."""

    def __init__(self, session: rt.Session) -> None:
        self.values: dict[str, list[Any]] = {}
        self.completed: set[str] = set()
        for name in (
            "messages",
            "sent",
            "generation_ticks",
            "generation_started",
            "generation_ended",
            "connection_changes",
            "errors",
            "session_started",
            "prompt_acks",
            "image_acks",
            "queue_positions",
            "remote_tracks",
            "frames",
            "ack_latencies",
            "stats",
            "diagnostics",
            "raw_stats",
            "quality",
        ):
            self._watch(name, getattr(session, name))

    def _watch(self, name: str, stream: rt.HotStream[Any]) -> None:
        bucket = self.values.setdefault(name, [])
        stream.subscribe(bucket.append, on_completed=lambda: self.completed.add(name))

    def __getitem__(self, name: str) -> list[Any]:
        return self.values[name]


@pytest.fixture
def make_session(server: rt.EmbeddedServer) -> Callable[..., rt.Session]:
    def make(**options: Any) -> rt.Session:
        options.setdefault("api_key", server.api_key)
        options.setdefault("model", "lucy-2.6")
        return rt.Session(server.url, **options)

    return make


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` on the loop; fail with a clear message after ``timeout``."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


LOSS_SIGMAS = 4


def loss_margin(loss: float, packets: int, slack: float) -> float:
    """How far a session's measured loss may be from what the link really dropped (its own
    counters, in the same stage or run) in the impaired-network tests: both are samples of
    one random drop, so 4 standard deviations of a binomial share over the packets the
    session counted (10 % over ~300 packets: 6.9 points; the share is taken as at least
    1 % so a clean stage keeps a margin), plus ``slack`` for what the link counts and the
    session does not (RTCP, STUN, retransmissions, padding). A correct estimator misses it
    about once in 15,000 stages; a wrong one (an RTX mix-up read 10 % as 0-8 %) does not
    pass."""
    share = max(loss, 0.01)
    return LOSS_SIGMAS * math.sqrt(share * (1 - loss) / max(packets, 1)) + slack
