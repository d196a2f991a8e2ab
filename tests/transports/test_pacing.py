"""Frames give way to billing: the pacer's rule, fed lag figures by hand, and the lag probe
on a real loop."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from rxrealtime.transports.pacing import EASE_S, MAX_SKIP, FramePacer, LoopLag


@dataclass
class FakeLoop:
    now: float = 0.0

    def time(self) -> float:
        return self.now


@dataclass
class FakeLag:
    lag_s: float
    loop: FakeLoop


def sent(pacer: FramePacer, frames: int) -> int:
    return sum(pacer.admit() for _ in range(frames))


def test_every_frame_goes_while_the_loop_keeps_time() -> None:
    pacer = FramePacer(FakeLag(0.0, FakeLoop()))  # type: ignore[arg-type]
    assert sent(pacer, 100) == 100 and pacer.dropped == 0


def test_a_lagging_loop_drops_frames_but_never_all() -> None:
    lag = FakeLag(0.2, FakeLoop())
    pacer = FramePacer(lag)  # type: ignore[arg-type]
    through = sent(pacer, 160)
    # one in MAX_SKIP + 1 once the skip has grown (1, 3, 7, 15), a couple before that
    assert 160 // (MAX_SKIP + 1) <= through <= 160 // (MAX_SKIP + 1) + 3
    assert pacer.skip == MAX_SKIP and pacer.dropped == 160 - through


def test_frames_come_back_slowly_once_the_loop_recovers() -> None:
    loop = FakeLoop()
    lag = FakeLag(0.2, loop)
    pacer = FramePacer(lag)  # type: ignore[arg-type]
    sent(pacer, 20)
    lag.lag_s = 0.0
    sent(pacer, 50)  # no time passed: nothing eases yet
    assert pacer.skip == MAX_SKIP
    for _ in range(MAX_SKIP):
        loop.now += EASE_S
        sent(pacer, 20)
    assert pacer.skip == 0 and sent(pacer, 10) == 10


async def test_the_probe_sees_a_blocked_loop() -> None:
    lag = LoopLag.of_running_loop()
    lag.hold()
    try:
        await asyncio.sleep(0.2)
        assert lag.lag_s < 0.03  # an idle loop keeps time
        time.sleep(0.3)  # the loop is blocked: the probe runs late
        await asyncio.sleep(0.01)
        assert lag.lag_s > 0.1
    finally:
        lag.release()
    assert LoopLag.of_running_loop() is not lag  # released: a fresh one next time
