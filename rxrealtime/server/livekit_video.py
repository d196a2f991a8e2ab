"""The server's participant in a session's LiveKit room: ``inference-server-<n>``.

It subscribes to the client's video, transforms each frame like the aiortc mode does
(:func:`.video.transform_frame`, the prompt's tint) and publishes the result as its own
video track. A client that publishes nothing within ``receive_only_after_s`` gets video
generated from the synthetic pattern instead, as a receive-only client does in aiortc
mode. Every generated frame is reported to the session (the first starts billing).

CPU is kept low: frames stay I420 from subscription to publication (the decoder's and
the encoder's own format; the tint is applied per plane, :func:`.video.transform_planes`,
so no frame is converted to RGB and back), at most two are queued (older ones are
dropped, not delayed), and one output buffer is reused.

The track is published with an explicit encoding
(:func:`~rxrealtime.media.encoding_for`): without one, LiveKit derives it from the
source's declared size, and a source declared at the synthetic 320x180 got the 180p
preset, 15 fps and simulcast layers: every session received half its frames, at a
fraction of its size.

It is published with simulcast all the same, the top layer being that explicit
encoding: a client whose link cannot carry the full size then gets a lower layer from
the SFU instead of a queue that overflows. With one layer the SFU could only keep
sending it: on a 300 kbit/s link a 640x360 stream of ~400 kbit/s plus the
retransmissions of what the full queue dropped arrived at 2.3 fps with 44 % loss and
0.6 s of RTT; with simulcast, 14.7-15.3 fps at ~205 kbit/s, 0-2 packets dropped. On a clean link the
client still receives the native size at the full rate (1280x720 at 30 fps); the cost
is the server's extra encodes (26 -> 35 % of a core at 1280x720@30).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import numpy as np

from ..media import SyntheticTrack, encoding_for, i420_planes, plane_arrays
from .video import FrameSink, tint_yuv, transform_planes

if TYPE_CHECKING:
    from livekit import rtc

__all__ = ["MIN_SIDE", "RoomGenerator"]

logger = logging.getLogger(__name__)

MIN_SIDE = 16
"""Frames narrower or lower than this are dropped. An H264 publisher that leaves makes
the subscriber's stream yield a last 2x2 frame, and ``capture_frame`` of such a frame hits
a libwebrtc check that aborts the whole process (tools/livekit/README.md, gotchas)."""


class RoomGenerator:
    """Joins one room as the generating participant; :meth:`start`, then :meth:`close`."""

    def __init__(
        self,
        url: str,
        token: str,
        client_identity: str,
        sink: FrameSink,
        *,
        receive_only_after_s: float = 1.5,
        synthetic: tuple[int, int, float] = (320, 180, 15.0),
        publish: tuple[int, int, float] = (1280, 720, 30.0),
    ) -> None:
        self.url = url
        self.client_identity = client_identity
        self.sink = sink
        self.receive_only_after_s = receive_only_after_s
        self.synthetic = synthetic
        self.publish = publish
        """The size and rate the published encoding is made for (the model's)."""
        self.source_kind = "none"
        """What the output is made from: ``none`` yet, ``client`` video or ``synthetic``."""
        self.frames = 0
        self.dropped_tiny = 0
        self._token = token
        self._room: rtc.Room | None = None
        self._source: rtc.VideoSource | None = None
        self._published = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._buffer = bytearray()
        self._planes: list[np.ndarray] = []
        self._size = (0, 0)

    def __repr__(self) -> str:  # never the token
        return f"<RoomGenerator for {self.client_identity} from {self.source_kind}>"

    @property
    def connect_outcome(self) -> str:
        """``not started``, ``pending``, ``connected``, ``failed`` or ``cancelled`` (a bug:
        LiveKit's native side panics a little later)."""
        connecting = self._connecting
        if connecting is None:
            return "not started"
        if not connecting.done():
            return "pending"
        if connecting.cancelled():
            return "cancelled"
        return "failed" if connecting.exception() is not None else "connected"

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        from livekit import rtc

        try:
            self._room = room = rtc.Room(loop=asyncio.get_running_loop())
            room.on("track_subscribed", self._on_track_subscribed)
            # Never cancel a connect: once LiveKit's native side has connected it waits for
            # the SDK's "ready for events", and without it panics and SIGTERMs the process.
            self._connecting = asyncio.ensure_future(room.connect(self.url, self._token))
            await asyncio.shield(self._connecting)
            width, height, fps = self.publish
            self._source = rtc.VideoSource(width, height)
            track = rtc.LocalVideoTrack.create_video_track("generated", self._source)
            bitrate, rate = encoding_for(width, height, fps)
            options = rtc.TrackPublishOptions(
                source=rtc.TrackSource.SOURCE_CAMERA, video_codec=rtc.VideoCodec.H264,
                video_encoding=rtc.VideoEncoding(max_bitrate=bitrate, max_framerate=rate),
                simulcast=True, frame_metadata_features=[  # the client's capture stamps, kept
                    rtc.FrameMetadataFeature.FMF_USER_TIMESTAMP,
                    rtc.FrameMetadataFeature.FMF_FRAME_ID,
                ],
            )  # fmt: skip
            await room.local_participant.publish_track(track, options)
            self._published.set()
            await asyncio.sleep(self.receive_only_after_s)
            if self._pump is None:  # a receive-only client: generate from the pattern
                self._replace_pump(self._from_pattern(), "synthetic")
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("the generating participant of %s failed", self.client_identity)

    def _on_track_subscribed(
        self, track: rtc.Track, publication: object, participant: rtc.RemoteParticipant
    ) -> None:
        from livekit import rtc

        if track.kind == rtc.TrackKind.KIND_VIDEO and participant.identity == self.client_identity:
            self._replace_pump(self._from_client(track), "client")

    def _replace_pump(self, work: Coroutine[Any, Any, None], kind: str) -> None:
        if self._pump is not None:
            self._pump.cancel()
        self.source_kind = kind
        self._pump = asyncio.ensure_future(work)

    async def _from_client(self, track: rtc.Track) -> None:
        from livekit import rtc

        await self._published.wait()
        stream = rtc.VideoStream(track, capacity=2, format=rtc.VideoBufferType.I420)
        try:
            async for event in stream:
                frame = event.frame
                width, height = frame.width, frame.height
                if width < MIN_SIDE or height < MIN_SIDE:
                    self.dropped_tiny += 1
                    continue
                planes = i420_planes(frame.data, width, height)
                self._emit(planes, width, height, event.metadata)
        finally:
            await stream.aclose()

    async def _from_pattern(self) -> None:
        width, height, fps = self.synthetic
        pattern = SyntheticTrack(width, height, fps)  # only its pure pattern() is used
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index in itertools.count():
            await asyncio.sleep(max(0.0, start + index / fps - loop.time()))
            self._emit(plane_arrays(pattern.pattern_yuv(index)), width, height)

    def _emit(
        self, planes: list[np.ndarray], width: int, height: int, metadata: Any = None
    ) -> None:
        """Tint one I420 frame into the reused output buffer and publish it, with the
        client frame's metadata (its capture stamp), as a generating service would: the
        client measures glass-to-glass latency from it."""
        from livekit import rtc

        if self._source is None:
            return
        if self._size != (width, height):
            cw, ch = (width + 1) // 2, (height + 1) // 2
            self._buffer = bytearray(width * height + 2 * cw * ch)
            self._planes, self._size = i420_planes(self._buffer, width, height), (width, height)
        transform_planes(planes, tint_yuv(self.sink.tint), self._planes)
        # capture_frame copies the pixels before it returns: the buffer is free again
        self._source.capture_frame(
            rtc.VideoFrame(width, height, rtc.VideoBufferType.I420, self._buffer),
            metadata=metadata,
        )
        self.frames += 1
        self.sink.on_frame()

    async def close(self) -> None:
        """Stop generating and leave the room (streams, then source, then the room)."""
        tasks = [t for t in (self._task, self._pump) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        connecting = self._connecting
        if connecting is not None:  # let a connect under way finish (wait() never cancels it)
            await asyncio.wait({connecting})
            if not connecting.cancelled():
                connecting.exception()  # retrieved: a failed connect was logged by _run
        if self._source is not None:
            await self._source.aclose()
            self._source = None
        if self._room is not None:
            with contextlib.suppress(Exception):
                await self._room.disconnect()
            self._room = None
