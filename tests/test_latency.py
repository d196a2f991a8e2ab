"""Glass-to-glass latency: the pure book and meter, the picture stamp through the server's
transform and a real codec, and the figures a session reports on both transports."""

from __future__ import annotations

import numpy as np
import pytest
from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame
from av import VideoFrame
from conftest import wait_until
from conftest_livekit import require_livekit

import rxrealtime as rt
from rxrealtime.latency import LatencyMeter, StampBook
from rxrealtime.media import VIDEO_TIME_BASE, SyntheticTrack, plane_arrays
from rxrealtime.server.video import prompt_tint, tint_yuv, transform_planes
from rxrealtime.stamps import BITS, block_side, paint_key, read_key

#: On loopback a frame is encoded, sent, decoded, tinted, encoded, sent and decoded again:
#: a few codec passes (ms each), two jitter buffers and at most a couple of frame
#: intervals. Measured here: ~30 ms (LiveKit) to ~140 ms (aiortc at 15 fps). One second
#: leaves room for a loaded CI machine and still fails a wrong clock or a wrong match
#: (those give seconds, or negative figures, which the meter drops).
PLAUSIBLE_S = 1.0


def test_the_book_keeps_recent_keys_only() -> None:
    book = StampBook(size=3)
    for key in range(5):
        book.sent(key, float(key))
    assert [book.captured_at(k) for k in range(5)] == [None, None, 2.0, 3.0, 4.0]


def test_the_meter_gives_nearest_rank_percentiles_and_drops_absurd_samples() -> None:
    meter = LatencyMeter()
    assert meter.summary() is None
    for ms in (10, 20, 30, 40, 50, 60, 70, 80, 90, 100):
        meter.sample(ms / 1000, "picture-stamp")
    meter.sample(-0.5, "picture-stamp")  # a clock mix-up is not a sample
    meter.sample(3600.0, "picture-stamp")
    meter.first_frame(0.25)
    got = meter.summary()
    assert got is not None
    assert (got.p50_s, got.p90_s, got.samples) == (0.05, 0.09, 10)
    assert (got.first_frame_s, got.source) == (0.25, "picture-stamp")


@pytest.mark.parametrize(("width", "height"), [(320, 180), (640, 360), (1280, 720), (1280, 704)])
def test_a_stamp_survives_the_servers_tint_and_vp8(width: int, height: int) -> None:
    track = SyntheticTrack(width, height, 30, stamp=False)
    encoder, decoder = Vp8Encoder(), Vp8Decoder()
    tint = tint_yuv(prompt_tint("a watercolor cat"))
    read = []
    for index in range(20):
        frame = track.pattern_yuv(index)
        assert paint_key(plane_arrays(frame), 4000 + index)
        out = VideoFrame(width, height, "yuv420p")
        transform_planes(plane_arrays(frame), tint, plane_arrays(out))
        out.pts, out.time_base = index * 3000, VIDEO_TIME_BASE
        payloads, timestamp = encoder.encode(out)
        data = b"".join(vp8_depayload(p) for p in payloads)
        for decoded in decoder.decode(JitterFrame(data=data, timestamp=timestamp)):
            read.append(read_key(plane_arrays(decoded)[0]))
    assert read == [(4000 + i) % 4096 for i in range(20)]


def test_no_code_in_a_small_picture_nor_in_a_damaged_one() -> None:
    assert block_side(64, 48) == 0
    assert not paint_key(plane_arrays(VideoFrame(64, 48, "yuv420p")), 7)
    frame = SyntheticTrack(320, 180, stamp=False).pattern_yuv(0)
    planes = plane_arrays(frame)
    assert paint_key(planes, 1234) and read_key(planes[0]) == 1234
    side = block_side(320, 180)
    last = (BITS + 1) * side  # the last check bit's block, flipped
    luma = planes[0]
    luma[-side:, last : last + side] = 251 - luma[-side:, last : last + side]
    assert read_key(luma) is None


def test_noise_rarely_reads_as_a_key() -> None:
    rng = np.random.default_rng(7)
    false = sum(read_key(rng.integers(0, 256, (180, 320), dtype=np.uint8)) is not None
                for _ in range(500))  # fmt: skip
    assert false <= 5  # the 4-bit check alone passes 1 in 16; the book filters the rest


async def _latency_of(session: rt.Session, track: SyntheticTrack) -> rt.quality.SessionStats:
    seen: list[rt.quality.SessionStats] = []
    session.stats.subscribe(seen.append)
    async with session.connect(local_track=track):
        await wait_until(
            lambda: bool(seen) and seen[-1].latency is not None and seen[-1].latency.samples >= 10,
            timeout=20,
        )
    return seen[-1]


def _assert_plausible(stats: rt.quality.SessionStats, source: str) -> None:
    latency = stats.latency
    assert latency is not None and latency.source == source
    assert latency.p50_s is not None and latency.p90_s is not None
    assert 0 < latency.p50_s <= latency.p90_s < PLAUSIBLE_S
    assert latency.first_frame_s is not None and 0 < latency.first_frame_s < 10


async def test_a_session_reports_glass_to_glass_latency_over_aiortc() -> None:
    async with rt.serve_embedded() as server:
        session = rt.Session(server.url, api_key=server.api_key, stats_interval_s=0.5)
        stats = await _latency_of(session, SyntheticTrack(320, 180, 15))
    _assert_plausible(stats, "picture-stamp")


async def test_a_session_reports_glass_to_glass_latency_over_livekit() -> None:
    require_livekit()
    async with rt.serve_embedded(media="livekit") as server:
        session = rt.Session(server.url, api_key=server.api_key, transport="livekit",
                             stats_interval_s=0.5)  # fmt: skip
        stats = await _latency_of(session, SyntheticTrack(640, 360, 30))
    _assert_plausible(stats, "frame-metadata")  # LiveKit's metadata, kept by the server


async def test_without_a_stamped_source_the_figures_stay_empty_not_wrong() -> None:
    async with rt.serve_embedded() as server:
        session = rt.Session(server.url, api_key=server.api_key, stats_interval_s=0.5)
        seen: list[rt.quality.SessionStats] = []
        session.stats.subscribe(seen.append)
        async with session.connect(local_track=SyntheticTrack(320, 180, 15, stamp=False)):
            await wait_until(lambda: len(seen) >= 3, timeout=20)
    latency = seen[-1].latency
    assert latency is not None and latency.samples == 0 and latency.p50_s is None
    assert latency.first_frame_s is not None  # the first frame is still timed
