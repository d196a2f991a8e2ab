"""One tick rule: the read loop's inlined tick lane decides exactly as the router does.

``read_frames`` inlines ``FrameRouter.route`` and the usual case of ``CheckedTicks`` for
speed, so the rule is written twice. Here hypothesis draws streams of frames (ticks
that step, repeat, go back and jump; other frames; malformed text) and checks that the
loop and the router publish the same ticks, messages and errors, in the same order.
The loop is fed its messages in memory, the way a sans-I/O test feeds a protocol; the
end-to-end suites run it on real sockets.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxrealtime import protocol as p
from rxrealtime.asyncio.signaling import CheckedTicks, FrameRouter, read_frames
from rxrealtime.exceptions import ProtocolError, RealtimeError
from rxrealtime.streams import HotStream

TEXT, CLOSE = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.CLOSE

ticks = st.builds(lambda s: p.encode(p.GenerationTick(seconds=s)), st.integers(0, 40))
jumps = st.builds(lambda s: p.encode(p.GenerationTick(seconds=s)), st.integers(0, 10_000))
others = st.sampled_from([
    p.encode(p.QueuePosition(position=2, queue_size=5)),
    p.encode(p.GenerationStarted()),
    b'{"type": "generation_tick", "seconds": "three"}',  # wrong field type
    b'{"type": "no_such_frame"}',
    b"{not json",
])  # fmt: skip
streams = st.lists(st.one_of(ticks, ticks, ticks, jumps, others), max_size=60)
steps = st.sampled_from([0.5, 1.0, 2.0, 3.0, 10.0, math.inf])


class Outcome:
    """What one path published: ticks, every message, errors (as text), in order."""

    def __init__(self, max_step_s: float) -> None:
        self.log: list[tuple[str, Any]] = []
        self.errors: HotStream[RealtimeError] = HotStream("errors")
        self.messages: HotStream[p.ServerMessage] = HotStream("messages")
        tick_stream: HotStream[p.GenerationTick] = HotStream("generation_ticks")
        tick_stream.subscribe(lambda t: self.log.append(("tick", t.seconds)))
        self.messages.subscribe(lambda m: self.log.append(("message", m)))
        self.errors.subscribe(lambda e: self.log.append(("error", f"{type(e).__name__}: {e}")))
        queue: HotStream[p.QueuePosition] = HotStream("queue_positions")
        queue.subscribe(lambda q: self.log.append(("queue", q)))
        self.router = FrameRouter(
            {p.GenerationTick: CheckedTicks(tick_stream, self.errors, max_step_s),
             p.QueuePosition: queue.emit},
            self.messages, self.errors,
        )  # fmt: skip


def receiver(frames: list[bytes]) -> Callable[[], Awaitable[aiohttp.WSMessage]]:
    messages = [aiohttp.WSMessage(TEXT, f, None) for f in frames]
    messages.append(aiohttp.WSMessage(CLOSE, 1000, None))
    feed = iter(messages)

    async def receive() -> aiohttp.WSMessage:
        return next(feed)

    return receive


def by_the_router(frames: list[bytes], max_step_s: float) -> list[tuple[str, Any]]:
    out = Outcome(max_step_s)
    for data in frames:
        try:
            frame = p.decode(data)
        except ProtocolError as exc:
            out.errors.emit(exc)
            continue
        out.router.route(frame)
    return out.log


async def by_the_read_loop(frames: list[bytes], max_step_s: float) -> list[tuple[str, Any]]:
    out = Outcome(max_step_s)
    await read_frames(receiver(frames), out.router, 1 << 20, lambda data: ProtocolError("x"))
    return out.log


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=streams, max_step_s=steps)
def test_the_read_loop_decides_every_frame_as_the_router_does(
    frames: list[bytes], max_step_s: float
) -> None:
    import asyncio

    looped = asyncio.run(by_the_read_loop(frames, max_step_s))
    routed = by_the_router(frames, max_step_s)
    assert looped == routed


def test_the_lane_refuses_a_jump_and_keeps_its_mark_in_both_paths() -> None:
    """A concrete case of the property, so a reader sees what is compared."""
    import asyncio

    frames = [p.encode(p.GenerationTick(seconds=s)) for s in (1, 2, 9_000, 3, 3, 2, 4)]
    looped = asyncio.run(by_the_read_loop(frames, 3.0))
    assert looped == by_the_router(frames, 3.0)
    billed = [s for kind, s in looped if kind == "tick"]
    assert billed == [1, 2, 3, 3, 2, 4]  # the jump is not billed; lower values pass
    assert sum(kind == "error" for kind, _ in looped) == 1
