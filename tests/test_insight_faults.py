"""Session insight against the embedded server's fault switches: quality degrades and
recovers, a video stall is reported, a queue counts down."""

from __future__ import annotations

from conftest import Recorder, wait_until

import rxrealtime as rt
from rxrealtime.diagnostics import VideoStall


def track() -> rt.media.SyntheticTrack:
    return rt.media.SyntheticTrack(96, 64, fps=15)


async def test_dropped_frames_degrade_quality_and_it_recovers(server) -> None:
    session = rt.Session(server.url, api_key=server.api_key, stats_interval_s=0.3)
    rec = Recorder(session)
    async with session.connect(local_track=track()):
        await wait_until(lambda: rec["quality"] and rec["quality"][-1].level == "good")
        server.faults.drop_generated_frames = 0.85  # ~2 fps arrive out of 15
        await wait_until(lambda: rec["quality"][-1].level in ("poor", "critical"))
        degraded = rec["quality"][-1]
        server.faults.drop_generated_frames = 0.0
        await wait_until(lambda: rec["quality"][-1].level == "good")
    assert degraded.limiting == "fps" and degraded.inbound_fps is not None
    assert degraded.inbound_fps < 8


async def test_a_frozen_video_is_a_stall_on_diagnostics_and_in_stats(server) -> None:
    server.faults.freeze_video_after_s = 0.5
    server.faults.freeze_video_for_s = 2.5
    session = rt.Session(server.url, api_key=server.api_key, stats_interval_s=0.3,
                         video_stall_s=1.0)  # fmt: skip
    rec = Recorder(session)
    async with session.connect(local_track=track()):
        await wait_until(lambda: any(isinstance(d, VideoStall) and not d.ongoing
                                     for d in rec["diagnostics"]), timeout=15)  # fmt: skip
        await wait_until(lambda: bool(rec["stats"]) and rec["stats"][-1].freezes >= 1)
    stalls = [d for d in rec["diagnostics"] if isinstance(d, VideoStall)]
    assert stalls[0].ongoing and stalls[0].seconds >= 1.0
    assert not stalls[1].ongoing and 1.5 <= stalls[1].seconds <= 4.0
    assert rec["stats"][-1].freeze_s >= 1.5
    assert len(rec["generation_ticks"]) > 5  # billing went on through the freeze


async def test_a_queue_is_observed_with_positions_counting_down(server) -> None:
    server.faults.queue_for_s = 0.6
    session = rt.Session(server.url, api_key=server.api_key)
    rec = Recorder(session)
    async with session.connect(local_track=track()):
        late: list[int] = []
        session.queue_positions.subscribe(lambda q: late.append(q.position))
    positions = [q.position for q in rec["queue_positions"]]
    assert len(positions) >= 2 and positions[-1] == 1
    assert positions == sorted(positions, reverse=True) and len(set(positions)) == len(positions)
    assert late == [1]  # the latest position replays to a subscriber after connect
