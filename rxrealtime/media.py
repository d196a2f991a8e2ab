"""Video tracks: a synthetic moving pattern to send, and a bridge from a frame stream
back to an aiortc track (to record ``session.frames`` with aiortc's ``MediaRecorder``)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from fractions import Fraction
from typing import Any, cast

import numpy as np
from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRecorder
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame
from av.frame import Frame
from av.packet import Packet
from reactivex import Observable

from .exceptions import ConfigError
from .latency import StampBook
from .stamps import KEY_BITS, paint_key

__all__ = [
    "BorrowedTrack",
    "FrameStreamTrack",
    "SyntheticTrack",
    "encoding_for",
    "i420_planes",
    "plane_arrays",
    "record",
    "rgb_to_yuv",
]

VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK_RATE)

# RGB (0-255) -> Y, U, V of BT.601 limited range, each row times (r, g, b) / 255 plus its
# offset: what libswscale uses by default for rgb24 <-> yuv420p, so a receiver converting
# back sees the RGB the sender meant. The synthetic pattern and the server's tint use it.
_BT601 = ((65.481, 128.553, 24.966), (-37.797, -74.203, 112.0), (112.0, -93.786, -18.214))
_BT601_OFFSET = (16, 128, 128)


def rgb_to_yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """One RGB colour in yuv420p's own terms (BT.601 limited range, as libswscale)."""
    return cast(
        "tuple[int, int, int]",
        tuple(
            round(offset + sum(k * c for k, c in zip(row, rgb, strict=True)) / 255)
            for row, offset in zip(_BT601, _BT601_OFFSET, strict=True)
        ),
    )


class SyntheticTrack(MediaStreamTrack):
    """A paced video track of a moving colour gradient with a bouncing white square.

    Small by default (320x180 at 15 fps): encoding and decoding VP8 in Python costs CPU,
    and the pattern only has to show that video flows and is transformed.

    Frames are made directly in yuv420p, the encoder's format: the gradient's red part
    depends on the column only and its green part on the row only, so each plane is the
    sum of a row vector and a column vector (BT.601 limited range, as libswscale
    converts), and no RGB frame is built or converted per frame. :meth:`pattern` is the
    same frame in RGB.

    Each frame sent carries its key in a strip of blocks at the bottom left (see
    :mod:`rxrealtime.stamps`; :meth:`pattern` and :meth:`pattern_yuv` stay bare), so a
    session measures glass-to-glass latency on either transport.
    """

    kind = "video"

    def __init__(
        self, width: int = 320, height: int = 180, fps: float = 15.0, *, stamp: bool = True
    ) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ConfigError("SyntheticTrack width and height must be positive even numbers")
        if not 0 < fps <= 120:
            raise ConfigError("SyntheticTrack fps must be in (0, 120]")
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._xs = np.arange(width, dtype=np.int64)
        self._ys = np.arange(height, dtype=np.int64)
        self._count = 0
        self._start: float | None = None
        self.stamps: StampBook | None = StampBook() if stamp else None
        """When each stamped frame was made, by the key painted into it
        (:mod:`rxrealtime.stamps`): a session reads the key back off the generated video
        to measure glass-to-glass latency. ``stamp=False`` sends the bare pattern."""
        self._key_offset = secrets.randbelow(1 << KEY_BITS)  # two tracks' keys differ

    def _square(self, index: int) -> tuple[int, int, int]:
        side = max(8, self.height // 6)
        x = (index * 5) % max(1, self.width - side)
        y = (index * 3) % max(1, self.height - side)
        return x, y, side

    def pattern(self, index: int) -> np.ndarray:
        """The RGB frame number ``index`` (pure: tests compare against it)."""
        shift = index * 4
        frame = np.empty((self.height, self.width, 3), dtype=np.uint8)
        frame[..., 0] = ((self._xs + shift) & 0xFF)[np.newaxis, :]
        frame[..., 1] = ((self._ys + 2 * shift) & 0xFF)[:, np.newaxis]
        frame[..., 2] = 128
        x, y, side = self._square(index)
        frame[y : y + side, x : x + side] = 255
        return frame

    def pattern_yuv(self, index: int) -> VideoFrame:
        """:meth:`pattern` ``index`` as a new yuv420p frame, built plane by plane."""
        shift = index * 4
        red = (self._xs + shift) & 0xFF
        green = (self._ys + 2 * shift) & 0xFF
        # Chroma is sampled once per 2x2 block: the mean of its two columns and two rows.
        red_c = (red[0::2] + red[1::2]) / 2
        green_c = (green[0::2] + green[1::2]) / 2
        frame = VideoFrame(self.width, self.height, "yuv420p")
        luma, u, v = plane_arrays(frame)
        # Each plane = row part + column part (+ the constant blue part), in uint8 with
        # no overflow: Y <= 94 + 129, U = [146, 184] - [0, 74], V = [119, 231] - [0, 94].
        (yr, yg, yb), (ur, ug, ub), (vr, vg, vb) = _BT601
        blue = 128
        np.add(
            _u8(16 + (yb * blue + yr * red) / 255)[np.newaxis, :],
            _u8(yg / 255 * green)[:, np.newaxis],
            out=luma,
        )
        np.subtract(  # ur and ug are negative
            _u8(128 + (ub * blue + ur * red_c) / 255)[np.newaxis, :],
            _u8(-ug / 255 * green_c)[:, np.newaxis],
            out=u,
        )
        np.subtract(  # vg and vb are negative
            _u8(128 + (vb * blue + vr * red_c) / 255)[np.newaxis, :],
            _u8(-vg / 255 * green_c)[:, np.newaxis],
            out=v,
        )
        x, y, side = self._square(index)
        luma[y : y + side, x : x + side] = 235  # white
        u[y // 2 : (y + side + 1) // 2, x // 2 : (x + side + 1) // 2] = 128
        v[y // 2 : (y + side + 1) // 2, x // 2 : (x + side + 1) // 2] = 128
        return frame

    async def _wait_due(self) -> None:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._count / self.fps
        if due > now:
            await asyncio.sleep(due - now)

    async def skip(self) -> None:
        """Let the next frame go by unmade: a sender that drops it (its pacer holds video
        back while the loop lags) pays for no pattern and no stamp."""
        await self._wait_due()
        self._count += 1

    async def recv(self) -> VideoFrame:
        """The next frame (yuv420p, 90 kHz timestamps), waiting until it is due at
        ``fps``; raises ``MediaStreamError`` once the track is stopped."""
        await self._wait_due()
        # A new frame each time, in the encoder's yuv420p: a frame handed out is never
        # written again, and never converted by two encoders at once (aiortc issue #767).
        frame = self.pattern_yuv(self._count)
        book = self.stamps
        if book is not None:
            key = (self._key_offset + self._count) % (1 << KEY_BITS)
            if paint_key(plane_arrays(frame), key):
                book.sent(key, time.monotonic())
        frame.pts = int(self._count * VIDEO_CLOCK_RATE / self.fps)
        frame.time_base = VIDEO_TIME_BASE
        self._count += 1
        return frame


def _u8(values: np.ndarray) -> np.ndarray:
    rounded: np.ndarray = np.rint(values).astype(np.uint8)
    return rounded


def plane_arrays(frame: VideoFrame) -> list[np.ndarray]:
    """Views (no copy) of a planar frame's planes, ``(rows, width)`` uint8 each, so numpy
    reads and writes the frame's own buffers (a padded row's padding is skipped)."""
    arrays = []
    for plane in frame.planes:
        flat: np.ndarray = np.frombuffer(cast(bytes, plane), dtype=np.uint8)
        arrays.append(flat.reshape(plane.height, plane.line_size)[:, : plane.width])
    return arrays


#: Bits per pixel per frame of the published video: LiveKit's 720p preset (1.7 Mbit/s
#: at 1280x720, 30 fps) is about 0.06; a little more keeps the tint band crisp.
BITS_PER_PIXEL = 0.07


def encoding_for(width: int, height: int, fps: float) -> tuple[int, float]:
    """(max bitrate in bit/s, max frame rate) to publish ``width`` x ``height`` at ``fps``."""
    bitrate = int(min(8_000_000, max(200_000, width * height * fps * BITS_PER_PIXEL)))
    return bitrate, fps


def i420_planes(data: Any, width: int, height: int) -> list[np.ndarray]:
    """Views (no copy) of a packed I420 buffer's Y, U and V planes (LiveKit's layout:
    chroma planes of ceil(width/2) x ceil(height/2))."""
    flat = np.frombuffer(data, dtype=np.uint8)
    cw, ch = (width + 1) // 2, (height + 1) // 2
    y_end, u_end = width * height, width * height + cw * ch
    return [flat[:y_end].reshape(height, width), flat[y_end:u_end].reshape(ch, cw),
            flat[u_end : u_end + cw * ch].reshape(ch, cw)]  # fmt: skip


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
