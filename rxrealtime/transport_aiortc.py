"""Media over a direct aiortc peer connection, negotiated with offer/answer on the socket.

The session's video goes out through a :class:`~rxrealtime.media.BorrowedTrack` (aiortc
stops a sender's track when its peer closes; the user's track must outlive reconnects
and ICE restarts). Trickled candidates that overtake the answer wait in a
:class:`~rxrealtime.ice.CandidateBuffer`. An ``ice-restart`` rebuilds the peer through
the TURN server it names and offers again, on the same link (same server session).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from . import protocol as p
from .exceptions import ConnectionLost, ProtocolError, register_secret
from .ice import CandidateBuffer, candidate_from_wire, create_peer_connection, gather_on_loopback
from .media import BorrowedTrack
from .media_transport import MediaContext, MediaTransport

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

    @property
    def peer_connection(self) -> RTCPeerConnection | None:
        return self.pc

    async def start(self) -> None:
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
            pc.addTransceiver(BorrowedTrack(track), direction="sendrecv")
        else:
            pc.addTransceiver("video", direction="recvonly")
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

        if self.context.stats_interval_s:
            self._spawn(self._pump_stats(pc, self.context.stats_interval_s))

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
            register_secret(turn.credential)
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

    async def _pump_stats(self, pc: RTCPeerConnection, interval: float) -> None:
        while self.pc is pc:
            await asyncio.sleep(interval)
            if pc.connectionState == "connected" and self.context.stats_wanted():
                self.context.stats_received(await pc.getStats())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
