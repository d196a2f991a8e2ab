"""Media through a LiveKit room: the service's current negotiation.

The socket stays what it is (prompts, acks, ticks, errors); instead of an SDP offer the
client sends ``livekit_join``, the server answers (after any ``queue_position``) with
``livekit_room_info``, and the client joins that room with LiveKit's own SDK
(``pip install 'rxrealtime[livekit]'``), publishes its video and subscribes to the video
of the participant whose identity starts with ``inference-server-``. Frames cross the
seam as ``av.VideoFrame`` both ways, so ``session.frames`` looks the same whichever
transport runs; a local track that is LiveKit's own ``LocalVideoTrack`` (what code
written for the vendor's SDK has) is published as it is, and ``remote_tracks`` carries
LiveKit's ``RemoteVideoTrack``. A room that disconnects is a lost link: the session core
decides whether to reconnect, exactly as for a dropped peer connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from .. import protocol as p
from ..exceptions import (
    ConfigError,
    ConnectionLost,
    ProtocolError,
    RedactingFilter,
    SecretScope,
)
from ..latency import StampBook
from ..quality import MediaCounters
from .base import MediaContext, MediaTransport
from .livekit_stats import media_counters

__all__ = ["GENERATED_IDENTITY_PREFIX", "LivekitTransport", "load_livekit"]

logger = logging.getLogger(__name__)

GENERATED_IDENTITY_PREFIX = "inference-server-"
"""The participant whose video track is the generated video."""

MIN_FRAME_SIDE = 16
"""Frames smaller than this are codec artefacts (an ending H264 track yields 2x2 ones),
and handing one to a LiveKit video source aborts the process inside libwebrtc: they are
dropped both ways."""

TOKEN_GRACE_S = 5.0
"""How long a closed link's room token stays redacted: LiveKit's SDK forwards its native
log lines in batches (every second), so a refused token can reach a log line after the
link closed."""


def load_livekit() -> Any:
    """``livekit.rtc``, or a clear error naming the extra that installs it.

    LiveKit's SDK logs a refused access token whole: its logger gets our redacting
    filter, so tokens (registered as secrets) never reach a log line.
    """
    try:
        from livekit import rtc
    except ImportError:
        raise ConfigError(
            "the LiveKit transport needs LiveKit's SDK: pip install 'rxrealtime[livekit]'"
        ) from None
    sdk_logger = logging.getLogger("livekit")
    if not any(isinstance(f, RedactingFilter) for f in sdk_logger.filters):
        sdk_logger.addFilter(RedactingFilter())
    return rtc


class LivekitTransport(MediaTransport):
    """One link's LiveKit room; see the module docstring."""

    handles = (p.LivekitRoomInfo,)

    def __init__(self, context: MediaContext) -> None:
        super().__init__(context)
        self.rtc = load_livekit()
        self.room: Any = None
        """The joined ``livekit.rtc.Room``, once :meth:`start` got that far."""
        self.room_info: p.LivekitRoomInfo | None = None
        self._info: asyncio.Future[p.LivekitRoomInfo] | None = None
        self._generated: asyncio.Future[Any] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._connecting: asyncio.Future[Any] | None = None
        self._closing = False
        self._secrets = SecretScope()
        """This link's room token: redacted until :data:`TOKEN_GRACE_S` after the link closes."""
        self._frame_ids = 0
        self._pumped = False
        """Whether this link pumps the user's frames (and counts them) or publishes the
        user's own LiveKit track as it is (then the encoder's count is the one there is)."""
        self._generated_tracks: list[Any] = []
        self._sent = StampBook()
        """When each frame this link published was captured, by its frame id."""

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._info, self._generated = self._room_info(), loop.create_future()
        if not self.context.view_only:  # a viewer's credentials come from watch-stream
            await self.context.send(p.LivekitJoin())
        info = await self._info  # queue positions arrive meanwhile, on their stream
        self.room = room = self.rtc.Room(loop=loop)
        room.on("track_subscribed", self._on_track_subscribed)
        room.on("disconnected", self._on_disconnected)
        # Never cancel a room connect half-way: LiveKit's native side then waits for a
        # "ready" that never comes and kills the process about 15 s later. The connect
        # runs as its own task; a cancelled start() leaves it to finish, close() waits.
        self._connecting = asyncio.ensure_future(room.connect(info.livekit_url, info.token))
        try:
            await asyncio.shield(self._connecting)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # rtc.ConnectError, a refused or expired token, a bad URL
            raise ConnectionLost(
                f"cannot join LiveKit room {info.room_name!r} at {info.livekit_url}: {exc}"
            ) from None
        if self.context.local_track is not None and not self.context.view_only:
            await self._publish(self.context.local_track)
        for participant in room.remote_participants.values():  # already there before us
            for publication in participant.track_publications.values():
                if publication.track is not None:
                    self._on_track_subscribed(publication.track, publication, participant)
        wait = self.context.media_timeout_s
        try:
            await asyncio.wait_for(asyncio.shield(self._generated), wait)
        except asyncio.TimeoutError:
            raise ConnectionLost(
                f"joined LiveKit room {info.room_name!r}, but no {GENERATED_IDENTITY_PREFIX}* "
                f"participant published video within {wait:g} s"
            ) from None

    def on_frame(self, frame: p.ServerMessage) -> None:
        """Check a ``livekit_room_info``: the one place it is checked, and the one
        place it goes. An accepted one names the server session (``identified``) and
        is the room :meth:`start` joins; a refused one is one :class:`ProtocolError`,
        which fails :meth:`start` (or, once the room is joined, is a ``problem``)."""
        if not isinstance(frame, p.LivekitRoomInfo) or self._closing:
            return  # after close, a room info is moot (and its token would outlive the link)
        self._secrets.add(frame.token)  # the token lets anyone into the room
        info = self._room_info()
        problem = _check_room_info(frame)
        if problem is not None:
            error = ProtocolError(problem, p.encode(frame))
            if info.done():
                self.context.problem(error)  # the room it named is joined already
            else:
                info.set_exception(error)
            return
        self.room_info = frame
        self.context.identified(frame)
        if not info.done():
            info.set_result(frame)

    def _room_info(self) -> asyncio.Future[p.LivekitRoomInfo]:
        """The room info :meth:`start` waits for; it may come before start() does."""
        if self._info is None:
            self._info = asyncio.get_running_loop().create_future()
        return self._info

    async def close(self) -> None:
        self._closing = True
        for future in (self._info, self._generated):
            if future is not None and not future.done():
                future.cancel()
            elif future is not None and not future.cancelled():
                future.exception()  # retrieved: moot once the link is closed
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        connecting = self._connecting
        if connecting is not None:
            if not connecting.done():
                await asyncio.wait([connecting], timeout=30)  # see start(): never cancel
            if connecting.done() and not connecting.cancelled():
                connecting.exception()  # retrieved: start() reported a failed connect
        if self.room is not None:
            await self.room.disconnect()
        asyncio.get_running_loop().call_later(TOKEN_GRACE_S, self._secrets.release)

    async def sample(self) -> tuple[MediaCounters, Any]:
        """Counters from LiveKit's WebRTC stats (see :mod:`.livekit_stats`): the room's
        records and the generated tracks' own. A room not (or no longer) connected, or a
        stats request that fails as the room closes, gives the frame count alone."""
        frames_sent = self._frame_ids if self._pumped else None
        room = self.room
        if room is None or self._closing or not room.isconnected():
            return MediaCounters(frames_sent=self._frame_ids), None
        try:
            stats = await room.get_rtc_stats()
        except Exception as exc:  # RuntimeError("the room isn't connected"), an FFI error
            logger.debug("LiveKit stats unavailable: %r", exc)
            return MediaCounters(frames_sent=self._frame_ids), None
        tracks = self._generated_tracks
        answers = await asyncio.gather(*(t.get_stats() for t in tracks), return_exceptions=True)
        generated = [r for a in answers if not isinstance(a, BaseException) for r in a]
        records = [*stats.publisher_stats, *stats.subscriber_stats]
        counters = media_counters(records, generated, frames_sent=frames_sent)
        raw = {"room": records, "generated": generated}
        return counters, raw

    # -- the room --------------------------------------------------------------------

    def _on_track_subscribed(self, track: Any, publication: Any, participant: Any) -> None:
        rtc = self.rtc
        if track.kind != rtc.TrackKind.KIND_VIDEO:
            return
        if not participant.identity.startswith(GENERATED_IDENTITY_PREFIX):
            return
        self.context.track_received(track)
        if track not in self._generated_tracks:
            self._generated_tracks.append(track)
        self._spawn(self._pump_generated(track))
        if self._generated is not None and not self._generated.done():
            self._generated.set_result(track)

    def _on_disconnected(self, reason: Any = None) -> None:
        if self._closing:
            return
        name = _reason_name(self.rtc, reason)
        error = ConnectionLost(f"LiveKit room disconnected ({name})")
        if self._generated is not None and not self._generated.done():
            self._generated.set_exception(error)
        self.context.lost(error)

    async def _publish(self, track: Any) -> None:
        """Publish the user's track: LiveKit's own ``LocalVideoTrack`` as it is (what code
        written for the vendor's SDK hands over; it stays the user's, and a reconnect
        publishes it again in the new room), any other (``av.VideoFrame`` from
        ``recv()``, aiortc's kind) pumped into a video source made for it.

        A pumped track is published with an explicit encoding for its size and rate
        (:func:`~rxrealtime.media.encoding_for`; LiveKit's default, derived from presets,
        capped some sizes at 15 fps and added simulcast layers) and with frame metadata:
        each frame carries an id and its capture time, which a server that keeps them
        hands back on the generated frame, for glass-to-glass latency."""
        rtc = self.rtc
        codec = rtc.VideoCodec.VP8 if self.context.preferred_codec == "vp8" else rtc.VideoCodec.H264
        if isinstance(track, rtc.LocalVideoTrack):
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA,
                                              video_codec=codec)  # fmt: skip
            await self.room.local_participant.publish_track(track, options)
            return
        from ..media import encoding_for

        first = await track.recv()
        while min(first.width, first.height) < MIN_FRAME_SIDE:
            first = await track.recv()
        fps = float(getattr(track, "fps", 30.0))
        bitrate, rate = encoding_for(first.width, first.height, fps)
        options = rtc.TrackPublishOptions(
            source=rtc.TrackSource.SOURCE_CAMERA, video_codec=codec, simulcast=False,
            video_encoding=rtc.VideoEncoding(max_bitrate=bitrate, max_framerate=rate),
            frame_metadata_features=[rtc.FrameMetadataFeature.FMF_USER_TIMESTAMP,
                                     rtc.FrameMetadataFeature.FMF_FRAME_ID],
        )  # fmt: skip
        source = rtc.VideoSource(first.width, first.height)
        local = rtc.LocalVideoTrack.create_video_track("camera", source)
        await self.room.local_participant.publish_track(local, options)
        packer = _I420Packer(rtc)
        self._pumped = True
        self._capture(source, packer, first)
        self._spawn(self._pump_local(track, source, packer))

    def _capture(self, source: Any, packer: _I420Packer, frame: Any) -> None:
        """One frame into the source, stamped with its id and capture time."""
        self._frame_ids += 1
        now_us = time.monotonic_ns() // 1000
        self._sent.sent(self._frame_ids, now_us / 1e6)
        metadata = self.rtc.FrameMetadata(frame_id=self._frame_ids, user_timestamp=now_us)
        source.capture_frame(packer.pack(frame), metadata=metadata)

    async def _pump_local(self, track: Any, source: Any, packer: _I420Packer) -> None:
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                frame = await track.recv()
                if min(frame.width, frame.height) >= MIN_FRAME_SIDE:
                    self._capture(source, packer, frame)
        except MediaStreamError:
            pass

    async def _pump_generated(self, track: Any) -> None:
        rtc = self.rtc
        stream = rtc.VideoStream(track, format=rtc.VideoBufferType.I420)
        emit, sent, report = self.context.frame_received, self._sent, self.context.latency
        try:
            async for event in stream:
                if min(event.frame.width, event.frame.height) < MIN_FRAME_SIDE:
                    continue
                metadata = event.metadata
                if metadata is not None and metadata.frame_id:
                    captured = sent.captured_at(metadata.frame_id)
                    # both the id and the stamp must be ours: a service that sends its own
                    # metadata gives no sample rather than a wrong one
                    if captured is not None and metadata.user_timestamp == round(captured * 1e6):
                        report(time.monotonic() - captured)
                emit(_to_av(rtc, event.frame))
        finally:
            await stream.aclose()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _check_room_info(info: p.LivekitRoomInfo) -> str | None:
    """Why a ``livekit_room_info`` is unusable, or ``None``."""
    parts = urlsplit(info.livekit_url)
    if parts.scheme not in ("ws", "wss", "http", "https") or not parts.hostname:
        return f"livekit_room_info has an unusable livekit_url {info.livekit_url!r}"
    if not info.token or not info.room_name:
        return "livekit_room_info lacks a token or a room name"
    return None


def _reason_name(rtc: Any, reason: Any) -> str:
    try:
        return str(rtc.DisconnectReason.Name(reason))
    except (ValueError, TypeError):
        return str(reason)


class _I420Packer:
    """``av.VideoFrame`` (yuv420p) -> LiveKit I420 frame, through one reused buffer:
    ``capture_frame`` copies the pixels before it returns, so the buffer is free again,
    and a frame costs one copy of its planes and no allocation."""

    def __init__(self, rtc: Any) -> None:
        self.rtc = rtc
        self._size = (0, 0)
        self._buffer = bytearray()
        self._planes: list[Any] = []

    def pack(self, frame: Any) -> Any:
        import numpy as np

        from ..media import i420_planes, plane_arrays

        width, height = frame.width, frame.height
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        if self._size != (width, height):
            chroma = ((width + 1) // 2) * ((height + 1) // 2)
            self._buffer = bytearray(width * height + 2 * chroma)
            self._planes = i420_planes(self._buffer, width, height)
            self._size = (width, height)
        for src, dst in zip(plane_arrays(frame), self._planes, strict=True):
            np.copyto(dst, src)
        return self.rtc.VideoFrame(width, height, self.rtc.VideoBufferType.I420, self._buffer)


def _to_av(rtc: Any, frame: Any) -> Any:
    """A LiveKit frame as an ``av.VideoFrame`` (yuv420p), the type aiortc's frames have."""
    import numpy as np
    from av import VideoFrame

    if frame.type != rtc.VideoBufferType.I420:
        frame = frame.convert(rtc.VideoBufferType.I420)
    w, h = frame.width, frame.height
    yuv = np.frombuffer(frame.data, dtype=np.uint8)[: w * h * 3 // 2].reshape(h * 3 // 2, w)
    return VideoFrame.from_ndarray(yuv, format="yuv420p")
