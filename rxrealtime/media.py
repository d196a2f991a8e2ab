"""Video tracks: a synthetic moving pattern to send, and a bridge from a frame stream
back to an aiortc track (to record ``session.frames`` with aiortc's ``MediaRecorder``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from fractions import Fraction
from typing import Any

import numpy as np
from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRecorder
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame
from av.frame import Frame
from av.packet import Packet
from av.video.reformatter import VideoReformatter
from reactivex import Observable

from .exceptions import ConfigError

__all__ = ["BorrowedTrack", "FrameStreamTrack", "SyntheticTrack", "record"]

VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK_RATE)


class SyntheticTrack(MediaStreamTrack):
    """A paced video track of a moving colour gradient with a bouncing white square.

    Small by default (320x180 at 15 fps): encoding and decoding VP8 in Python costs CPU,
    and the pattern only has to show that video flows and is transformed.
    """

    kind = "video"

    def __init__(self, width: int = 320, height: int = 180, fps: float = 15.0) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ConfigError("SyntheticTrack width and height must be positive even numbers")
        if not 0 < fps <= 120:
            raise ConfigError("SyntheticTrack fps must be in (0, 120]")
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._xx, self._yy = np.meshgrid(
            np.arange(width, dtype=np.uint16), np.arange(height, dtype=np.uint16)
        )
        self._count = 0
        self._start: float | None = None
        # One reformatter for the track's life: libswscale's context is built once, not
        # per frame (about 1.6x faster at 320x180 here).
        self._reformatter = VideoReformatter()

    def pattern(self, index: int) -> np.ndarray:
        """The RGB frame number ``index`` (pure: tests compare against it)."""
        shift = index * 4
        frame = np.empty((self.height, self.width, 3), dtype=np.uint8)
        frame[..., 0] = (self._xx + shift) & 0xFF
        frame[..., 1] = (self._yy + 2 * shift) & 0xFF
        frame[..., 2] = 128
        side = max(8, self.height // 6)
        x = (index * 5) % max(1, self.width - side)
        y = (index * 3) % max(1, self.height - side)
        frame[y : y + side, x : x + side] = 255
        return frame

    async def recv(self) -> VideoFrame:
        """The next frame (yuv420p, 90 kHz timestamps), waiting until it is due at
        ``fps``; raises ``MediaStreamError`` once the track is stopped."""
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._count / self.fps
        if due > now:
            await asyncio.sleep(due - now)
        # yuv420p, as encoders want it: a shared frame is then never converted twice at once
        rgb = VideoFrame.from_ndarray(self.pattern(self._count), format="rgb24")
        frame = self._reformatter.reformat(rgb, format="yuv420p")
        frame.pts = int(self._count * VIDEO_CLOCK_RATE / self.fps)
        frame.time_base = VIDEO_TIME_BASE
        self._count += 1
        return frame


class BorrowedTrack(MediaStreamTrack):
    """Lends a track to one peer connection without giving it away.

    aiortc stops a sender's track when its peer connection closes; the session hands
    each peer a ``BorrowedTrack`` instead, so the user's track outlives reconnects and
    ICE restarts, and nothing keeps reading it once the session is gone.
    """

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source

    async def recv(self) -> Frame | Packet[Any]:
        """The source track's next frame; raises ``MediaStreamError`` once this track or
        the source is stopped (stopping this one leaves the source live)."""
        if self.readyState != "live" or self._source.readyState != "live":
            raise MediaStreamError
        return await self._source.recv()


class FrameStreamTrack(MediaStreamTrack):
    """An aiortc video track fed by an observable of ``av.VideoFrame`` (e.g. ``session.frames``).

    Keeps at most ``buffer`` frames (oldest dropped) so a slow consumer cannot grow memory.
    The track ends when the observable completes.
    """

    kind = "video"

    def __init__(self, frames: Observable[VideoFrame], buffer: int = 30) -> None:
        super().__init__()
        self._queue: asyncio.Queue[VideoFrame | None] = asyncio.Queue(maxsize=buffer)
        self._subscription = frames.subscribe(
            on_next=self._put, on_completed=lambda: self._put(None)
        )

    def _put(self, frame: VideoFrame | None) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(frame)

    async def recv(self) -> VideoFrame:
        """The oldest buffered frame, waiting for one; raises ``MediaStreamError`` once
        the observable has completed (the track then stops) or the track is stopped."""
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        return frame

    def stop(self) -> None:
        """End the track and unsubscribe from the observable."""
        self._subscription.dispose()
        super().stop()


@contextlib.asynccontextmanager
async def record(frames: Observable[VideoFrame], path: str) -> AsyncIterator[MediaRecorder]:
    """Record the frames of an observable to a file (format from the extension) while open."""
    recorder = MediaRecorder(path)
    track = FrameStreamTrack(frames)
    recorder.addTrack(track)
    await recorder.start()
    try:
        yield recorder
    finally:
        track.stop()
        await recorder.stop()
