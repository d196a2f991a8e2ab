"""The video the embedded server and the synthetic track make, checked pixel by pixel
against their RGB references (no network: the tracks are driven directly)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

import rxrealtime as rt
from rxrealtime.media import plane_arrays
from rxrealtime.server.video import (
    GeneratedTrack,
    prompt_tint,
    tint_yuv,
    transform_frame,
)


def rgb_of(frame: VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24").astype(np.int16)


@pytest.mark.parametrize(("width", "height"), [(320, 180), (64, 48), (96, 64)])
def test_synthetic_frames_are_yuv420p_and_show_the_rgb_pattern(width: int, height: int) -> None:
    track = rt.media.SyntheticTrack(width, height)
    for index in (0, 1, 37, 64, 200):
        frame = track.pattern_yuv(index)
        assert frame.format.name == "yuv420p"
        assert (frame.width, frame.height) == (width, height)
        diff = np.abs(rgb_of(frame) - track.pattern(index))
        # conversion rounding everywhere; only the square's chroma edge blurs further
        assert diff.mean() < 2.5
        assert np.percentile(diff, 95) <= 4


async def test_synthetic_track_paces_and_stamps_new_frames() -> None:
    track = rt.media.SyntheticTrack(64, 48, fps=20)
    first = await track.recv()
    copy = first.to_ndarray().copy()
    frames = [await track.recv() for _ in range(4)]
    assert [f.pts for f in (first, *frames)] == [0, 4500, 9000, 13500, 18000]
    assert first.time_base == Fraction(1, 90_000)
    assert all(f is not first for f in frames)
    assert np.array_equal(first.to_ndarray(), copy)  # a frame handed out is never rewritten
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


@pytest.mark.parametrize(
    "bad", [(0, 48, 5.0), (63, 48, 5.0), (64, 47, 5.0), (64, 48, 0), (64, 48, 121)]
)
def test_synthetic_track_rejects_bad_sizes_and_rates(bad: tuple[int, int, float]) -> None:
    with pytest.raises(rt.ConfigError):
        rt.media.SyntheticTrack(*bad)


@pytest.mark.parametrize("tint", [(64, 64, 64), (255, 255, 255), (200, 80, 140), (70, 250, 90)])
def test_tint_yuv_is_what_libswscale_converts_back_to_the_tint(tint: tuple[int, int, int]) -> None:
    frame = VideoFrame(16, 16, "yuv420p")
    for plane, value in zip(plane_arrays(frame), tint_yuv(tint), strict=True):
        plane[:] = value
    assert np.abs(rgb_of(frame)[8, 8] - tint).max() <= 2


class Sink:
    """A FrameSink whose tint, frame count and dropped frames the test controls."""

    def __init__(self, prompt: str) -> None:
        self.tint = prompt_tint(prompt)
        self.frames = 0
        self.drop: set[int] = set()

    def on_frame(self) -> None:
        self.frames += 1

    def frame_due(self) -> bool:
        return self.frames not in self.drop


class Frames(rt.media.SyntheticTrack):
    """The synthetic pattern, unpaced (as fast as the track reads)."""

    async def recv(self) -> VideoFrame:
        self._start = 0.0  # every frame is long due
        return await super().recv()


async def test_generated_track_tints_yuv_planes_like_the_rgb_transform() -> None:
    source, sink = Frames(320, 180, stamp=False), Sink("anime")
    track = GeneratedTrack(source, sink)
    reference = rt.media.SyntheticTrack(320, 180)
    for index in range(3):
        out = await track.recv()
        assert out.format.name == "yuv420p"
        expected = transform_frame(reference.pattern(index), sink.tint).astype(np.int16)
        diff = np.abs(rgb_of(out) - expected)
        assert diff.mean() < 2.5 and np.percentile(diff, 95) <= 4
        band = rgb_of(out)[2:28, 4:-4].reshape(-1, 3).mean(axis=0)
        assert np.abs(band - sink.tint).max() <= 4  # the band: the prompt's colour, rounded
        assert out.pts == index * 6000
    assert sink.frames == 3
    track.stop()
    assert source.readyState == "ended"


async def test_generated_track_follows_the_prompt_and_hands_out_new_frames() -> None:
    sink = Sink("sunset")
    track = GeneratedTrack(Frames(64, 48), sink)
    first = await track.recv()
    kept = first.to_ndarray().copy()
    sink.tint = prompt_tint("cyberpunk city")
    second = await track.recv()
    assert second is not first
    assert np.array_equal(first.to_ndarray(), kept)  # an encoder may still hold it
    for frame, prompt in ((first, "sunset"), (second, "cyberpunk city")):
        band = rgb_of(frame)[1:7, 2:-2].reshape(-1, 3).mean(axis=0)
        assert np.abs(band - prompt_tint(prompt)).max() <= 4


async def test_generated_track_counts_dropped_frames_but_skips_them() -> None:
    sink = Sink("p")
    sink.drop = {2, 3}  # frame_due is False for the 2nd and 3rd source frames
    track = GeneratedTrack(Frames(64, 48), sink)
    pts = [(await track.recv()).pts for _ in range(2)]
    assert pts == [0, 3 * 6000]  # source frames 1 and 4 (15 fps: 6000 ticks apart)
    assert sink.frames == 4  # every source frame reached the sink (the billing clock's start)


async def test_generated_track_converts_a_source_in_another_format() -> None:
    rgb = np.zeros((48, 64, 3), dtype=np.uint8)
    rgb[:] = (20, 120, 220)

    class RgbSource(rt.media.SyntheticTrack):
        async def recv(self) -> VideoFrame:
            frame = VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = 0, Fraction(1, 90_000)
            return frame

    sink = Sink("x")
    out = await GeneratedTrack(RgbSource(64, 48), sink).recv()
    assert out.format.name == "yuv420p"
    expected = transform_frame(rgb, sink.tint).astype(np.int16)
    assert np.abs(rgb_of(out) - expected).max() <= 4
