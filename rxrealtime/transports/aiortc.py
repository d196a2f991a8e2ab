"""Media over a direct aiortc peer connection, negotiated with offer/answer on the socket.

The session's video goes out through a :class:`~rxrealtime.media.BorrowedTrack` (aiortc
stops a sender's track when its peer closes; the user's track must outlive reconnects
and ICE restarts). Trickled candidates that overtake the answer wait in a
:class:`~rxrealtime.transports.ice.CandidateBuffer`. An ``ice-restart`` rebuilds the peer through
the TURN server it names and offers again, on the same link (same server session).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from .. import protocol as p
from ..exceptions import ConnectionLost, ProtocolError, SecretScope
from ..media import VIDEO_CLOCK_RATE, BorrowedTrack
from ..quality import MediaCounters
from .base import MediaContext, MediaTransport
from .ice import CandidateBuffer, candidate_from_wire, create_peer_connection, gather_on_loopback
from .jitter import install as install_jitter_buffer
from .pacing import FramePacer, LoopLag
from .senders import install_sender_rules

__all__ = ["AiortcTransport"]

logger = logging.getLogger(__name__)


class AiortcTransport(MediaTransport):
    """One link's aiortc peer connection; see the module docstring."""

    handles = (p.Answer, p.IceCandidateMessage, p.IceRestart)

    def __init__(self, context: MediaContext) -> None:
        super().__init__(context)
        self.pc: RTCPeerConnection | None = None
        """The current peer connection (a new one after each ICE restart)."""
        self._candidates = CandidateBuffer()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._answered: asyncio.Future[None] | None = None
        self._peer_up: asyncio.Future[None] | None = None
        self._closed = False
        self._frames_sent = 0
        self._secrets = SecretScope()
        """TURN credentials an ICE restart gave this link: redacted until it closes."""
        self._pacer: FramePacer | None = None
        """Drops frames before they are encoded while the event loop lags (billing first)."""

    @property
    def peer_connection(self) -> RTCPeerConnection | None:
        return self.pc

    async def start(self) -> None:
        if self.context.local_track is not None and self.context.video_backoff and not self._pacer:
            lag = LoopLag.of_running_loop()
            lag.hold()
            self._pacer = FramePacer(lag)
        await self._offer()
        assert self._answered is not None and self._peer_up is not None
        await self._answered
        await self._peer_up

    def on_frame(self, frame: p.ServerMessage) -> None:
        if isinstance(frame, p.Answer):
            if self.pc is None:
                self.context.problem(ProtocolError("answer without a pending offer"))
                return
            self._spawn(self._apply_answer(self.pc, frame.sdp))
        elif isinstance(frame, p.IceCandidateMessage):
            if self.pc is not None and not self._candidates.hold(frame.candidate):
                self._spawn(self._add_candidate(self.pc, frame.candidate))
        elif isinstance(frame, p.IceRestart) and self.pc is not None:
            self._spawn(self._ice_restart(frame.turn_config))

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.pc is not None:
            await self.pc.close()
        self._secrets.release()  # the link is over: its TURN credentials with it
        if self._pacer is not None:
            self._pacer.lag.release()

    # -- negotiation -----------------------------------------------------------------

    async def _offer(self, extra_ice: Sequence[dict[str, Any]] = ()) -> None:
        """A new peer connection, offered to the server."""
        loop = asyncio.get_running_loop()
        self._answered, self._peer_up = loop.create_future(), loop.create_future()
        self._candidates.reset()
        pc = create_peer_connection([*self.context.ice_servers, *extra_ice])
        self._wire(pc)
        track = self.context.local_track
        if track is not None:
            transceiver = pc.addTransceiver(_CountingTrack(track, self), direction="sendrecv")
        else:
            transceiver = pc.addTransceiver("video", direction="recvonly")
        install_jitter_buffer(transceiver.receiver)
        install_sender_rules(transceiver.sender)
        if self.context.preferred_codec:
            transceiver.setCodecPreferences(_codecs_first(self.context.preferred_codec))
        offer = await pc.createOffer()
        with gather_on_loopback(self.context.loopback):
            await pc.setLocalDescription(offer)
        await self.context.send(p.Offer(sdp=pc.localDescription.sdp))

    def _wire(self, pc: RTCPeerConnection) -> None:
        self.pc = pc

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if self.pc is not pc or self._closed:
                return  # an old peer replaced by an ice-restart, or our own close
            state = pc.connectionState
            logger.debug("peer connection state %s", state)
            if state == "connected" and self._peer_up is not None and not self._peer_up.done():
                self._peer_up.set_result(None)
            elif state in ("failed", "closed"):
                self.context.lost(ConnectionLost(f"peer connection {state}"))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self.context.track_received(track)
                self._spawn(self._pump_frames(track))

    async def _apply_answer(self, pc: RTCPeerConnection, sdp: str) -> None:
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:  # aiortc raises ValueError and others for bad SDP
            error = ProtocolError(f"unusable SDP answer: {exc}", sdp)
            self.context.problem(error)
            self.context.lost(error)
            return
        for candidate in self._candidates.release():
            await self._add_candidate(pc, candidate)
        if self._answered is not None and not self._answered.done():
            self._answered.set_result(None)

    async def _add_candidate(self, pc: RTCPeerConnection, candidate: p.IceCandidate) -> None:
        try:
            await pc.addIceCandidate(candidate_from_wire(candidate))
        except Exception as exc:
            self.context.problem(
                ProtocolError(f"unusable ICE candidate: {exc}", candidate.candidate)
            )

    async def _ice_restart(self, turn: p.TurnConfig) -> None:
        """Rebuild the peer connection through the given TURN server and offer again."""
        try:
            old, self.pc = self.pc, None  # first: the old peer's "closed" is not a loss
            if old is not None:
                await old.close()
            self._secrets.add(turn.credential)
            turn_server = {"urls": turn.server_url, "username": turn.username,
                           "credential": turn.credential}  # fmt: skip
            await self._offer(extra_ice=[turn_server])
        except Exception as exc:
            self.context.lost(ConnectionLost(f"ICE restart failed: {exc!r}"))

    # -- pumps -----------------------------------------------------------------------

    async def _pump_frames(self, track: MediaStreamTrack) -> None:
        emit = self.context.frame_received
        try:
            while True:
                emit(await track.recv())
        except MediaStreamError:
            pass

    async def sample(self) -> tuple[MediaCounters, Any]:
        """Counters from aiortc's stats report (jitter from RTP units of the 90 kHz clock)."""
        pc = self.pc
        if pc is None or pc.connectionState != "connected":
            return MediaCounters(frames_sent=self._frames_sent), None
        report = await pc.getStats()
        primary = _primary_inbound(pc)  # the report's own inbound figures only without it
        received, lost, jitter = primary or (0, 0, None)
        bytes_in = bytes_out = 0
        rtt = None
        for stat in report.values():
            kind = stat.type
            if kind == "inbound-rtp" and primary is None:
                received += stat.packetsReceived or 0
                lost += stat.packetsLost or 0
                jitter = (stat.jitter or 0) / VIDEO_CLOCK_RATE
            elif kind == "remote-inbound-rtp" and stat.roundTripTime is not None:
                rtt = stat.roundTripTime
            elif kind == "transport":
                bytes_in += stat.bytesReceived or 0
                bytes_out += stat.bytesSent or 0
        counters = MediaCounters(
            frames_sent=self._frames_sent, bytes_received=bytes_in, bytes_sent=bytes_out,
            packets_received=received, packets_lost=lost, jitter_s=jitter, rtt_s=rtt,
        )  # fmt: skip
        return counters, report

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _CountingTrack(BorrowedTrack):
    """The user's track, lent to this peer, counting the frames it sends and dropping
    those its transport's :class:`~rxrealtime.transports.pacing.FramePacer` holds back."""

    def __init__(self, source: MediaStreamTrack, owner: AiortcTransport) -> None:
        super().__init__(source)
        self._owner = owner

    async def recv(self) -> Any:
        pacer = self._owner._pacer
        skip = getattr(self._source, "skip", None)  # a SyntheticTrack need not make it
        while pacer is not None and not pacer.admit():
            if skip is not None and self.readyState == "live":
                await skip()
            else:
                await super().recv()  # a camera's frame comes anyway: drop it
        frame = await super().recv()
        self._owner._frames_sent += 1
        return frame


def _codecs_first(name: str) -> list[Any]:
    """aiortc's video codecs with ``name`` (``vp8``, ``h264``) first, others after."""
    from aiortc import RTCRtpSender

    codecs = RTCRtpSender.getCapabilities("video").codecs
    wanted = [c for c in codecs if c.mimeType.lower() == f"video/{name}"]
    return wanted + [c for c in codecs if c not in wanted]


def _primary_inbound(pc: RTCPeerConnection) -> tuple[int, int, float | None] | None:
    """Packets received and lost (and jitter, s) of the media streams, retransmissions aside.

    aiortc's stats report names every inbound stream of a receiver with the same id, so
    once the sender retransmits (RTX, on its own SSRC: it does as soon as a packet is
    lost) the RTX stream's counters replace the media stream's and the loss measured is
    that of the few retransmissions. Found on an impaired link (10 % loss read as 0-8 %);
    this reads each receiver's streams by SSRC instead, skipping the RTX ones. The names
    are aiortc's private ones (1.x): without them, ``None`` and the report is used.
    """
    received = lost = 0
    jitter: float | None = None
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        streams = getattr(receiver, "_RTCRtpReceiver__remote_streams", None)
        rtx = getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", None)
        if not isinstance(streams, dict) or not isinstance(rtx, dict):
            return None
        for ssrc, stream in streams.items():
            if ssrc in rtx:
                continue
            received += stream.packets_received
            lost += stream.packets_lost
            jitter = stream.jitter / VIDEO_CLOCK_RATE
    return received, lost, jitter
