"""A session's video as JPEG images, encoded with PyAV only while someone watches.

PIL is not a dependency; PyAV (aiortc's) is, and its ``mjpeg`` encoder turns an
``av.VideoFrame`` into a baseline JPEG in about a millisecond at 320x180. Frames are
scaled down to ``max_width`` and encoded at most ``max_fps`` times a second, in a worker
thread so the session's loop keeps delivering ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from fractions import Fraction
from typing import Any

from reactivex import abc

__all__ = ["JpegEncoder", "VideoFeed", "offer"]

logger = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 1000)


class JpegEncoder:
    """``av.VideoFrame`` → JPEG bytes; the codec context is rebuilt when the size changes."""

    def __init__(self, max_width: int = 640, quality: int = 5) -> None:
        self.max_width = max_width
        self.quality = quality  # ffmpeg's qscale: 2 (best) .. 31
        self._codec: Any = None
        self._size = (0, 0)
        self._pts = 0

    def encode(self, frame: Any) -> bytes:
        import av

        width, height = frame.width, frame.height
        if width > self.max_width:
            width, height = self.max_width, max(2, round(height * self.max_width / width))
        width, height = width - width % 2, height - height % 2
        if self._codec is None or self._size != (width, height):
            codec = av.CodecContext.create("mjpeg", "w")
            codec.width, codec.height = width, height
            codec.pix_fmt = "yuvj420p"
            codec.time_base = TIME_BASE
            codec.options = {"qmin": str(self.quality), "qmax": str(self.quality)}
            self._codec, self._size = codec, (width, height)
        image = frame.reformat(width=width, height=height, format="yuvj420p")
        self._pts += 1
        image.pts, image.time_base = self._pts, TIME_BASE  # ours, not the stream's

        return b"".join(bytes(packet) for packet in self._codec.encode(image))


class VideoFeed:
    """JPEGs of ``frames`` for any number of viewers, each with a one-image queue.

    The feed subscribes to ``frames`` when the first viewer joins and unsubscribes (and
    stops encoding) when the last one leaves; a slow viewer only ever gets the newest
    image, so nothing queues up behind it.
    """

    def __init__(self, frames: Any, max_fps: float = 10.0, max_width: int = 640) -> None:
        self.frames = frames
        self.interval_s = 1.0 / max_fps
        self.encoder = JpegEncoder(max_width)
        self.viewers: set[asyncio.Queue[bytes | None]] = set()
        self.encoded = 0
        self._latest: Any = None
        self._ready = asyncio.Event()
        self._subscription: abc.DisposableBase | None = None
        self._task: asyncio.Task[None] | None = None

    def join(self) -> asyncio.Queue[bytes | None]:
        """A new viewer's queue (``None`` in it means: the feed ended)."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=1)
        self.viewers.add(queue)
        if self._subscription is None:
            self.encoder = JpegEncoder(self.encoder.max_width)  # never shared with an old thread
            self._subscription = self.frames.subscribe(self._on_frame)
            self._task = asyncio.ensure_future(self._encode_loop())
        return queue

    async def leave(self, queue: asyncio.Queue[bytes | None]) -> None:
        """Remove a viewer; the last one out stops the subscription and the encoder."""
        self.viewers.discard(queue)
        if not self.viewers:
            await self.close()

    async def close(self) -> None:
        for queue in self.viewers:
            offer(queue, None)
        self.viewers.clear()
        if self._subscription is not None:
            self._subscription.dispose()
            self._subscription = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._latest = None

    @property
    def active(self) -> bool:
        """Whether the feed is subscribed to the frames (someone watches)."""
        return self._subscription is not None

    def _on_frame(self, frame: Any) -> None:
        self._latest = frame
        self._ready.set()

    async def _encode_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._ready.wait()
            self._ready.clear()
            frame, self._latest = self._latest, None
            if frame is None:
                continue
            try:
                jpeg = await loop.run_in_executor(None, self.encoder.encode, frame)
            except Exception:  # a frame the encoder cannot take must not end the feed
                logger.exception("could not encode a video frame as JPEG")
                continue
            self.encoded += 1
            for queue in self.viewers:
                offer(queue, jpeg)
            await asyncio.sleep(self.interval_s)


def offer(queue: asyncio.Queue[Any], item: Any) -> None:
    """Put ``item``, dropping the oldest items while the queue is full (newest wins)."""
    while queue.full():
        queue.get_nowait()
    queue.put_nowait(item)
