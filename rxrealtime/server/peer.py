"""What every WebSocket client of the reference server shares: reading its frames,
answering its offers, applying its trickled candidates.

A streaming session and a viewer differ only in what they do with prompts and which
tracks they send (see :mod:`.sessions`); the signaling rules are here, once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from aiohttp import WSMsgType, web
from aiortc import RTCPeerConnection, RTCSessionDescription

from .. import protocol as p
from ..exceptions import ProtocolError
from ..transports.ice import (
    CandidateBuffer,
    candidate_from_wire,
    create_peer_connection,
    gather_on_loopback,
)
from ..urls import is_loopback_host
from .context import PeerContext

__all__ = ["Attach", "ServerPeer"]

logger = logging.getLogger(__name__)

Attach = Callable[[RTCPeerConnection], Callable[[], None] | None]
"""Called with a new peer connection before the offer is applied (to hook ``track``);
what it returns runs once the offer is applied (to add the tracks to send)."""


class ServerPeer:
    """One WebSocket client of the server (a streaming client or a view-only subscriber)."""

    def __init__(self, server: PeerContext, ws: web.WebSocketResponse) -> None:
        self.server = server
        self.ws = ws
        self.pc: RTCPeerConnection | None = None
        self.candidates = CandidateBuffer()

    @property
    def closed(self) -> bool:
        return self.ws.closed

    @property
    def session_id(self) -> str:
        """The server session this peer belongs to (sent after each answer)."""
        raise NotImplementedError

    async def send(self, message: p.ServerMessage) -> bool:
        """Send one frame; False if the client is gone."""
        if self.ws.closed:
            return False
        try:
            await self.ws.send_str(p.encode(message).decode())
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def send_raw(self, frame: str | bytes) -> None:
        """Send a frame as given (text or binary), valid or not: for fault injection."""
        if self.ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            if isinstance(frame, bytes):
                await self.ws.send_bytes(frame)
            else:
                await self.ws.send_str(frame)

    async def serve(self) -> None:
        """Read client frames until the socket closes; bad frames are counted, not fatal."""
        try:
            limit = self.server.settings.max_frame_bytes
            async for msg in self.ws:
                if msg.type is WSMsgType.TEXT:
                    if len(msg.data) > limit:
                        self.server.count("oversized_frames")
                        continue
                    try:
                        frame = p.decode_client_message(msg.data)
                    except ProtocolError as exc:
                        self.server.count("protocol_errors")
                        logger.debug("bad client frame: %s", exc)
                        continue
                    try:
                        await self.handle(frame)
                    except Exception:
                        self.server.count("handler_errors")
                        logger.exception("handling %s failed", type(frame).__name__)
                elif msg.type in (WSMsgType.BINARY, WSMsgType.ERROR):
                    self.server.count("protocol_errors")
        finally:
            await self.close()

    async def handle(self, frame: p.ClientMessage) -> None:
        if isinstance(frame, p.Offer):
            await self.on_offer(frame.sdp)
        elif isinstance(frame, p.IceCandidateMessage):
            if not self.candidates.hold(frame.candidate):
                await self._add_candidate(frame.candidate)

    async def on_offer(self, sdp: str) -> None:
        raise NotImplementedError

    async def negotiate(self, sdp: str, attach: Attach) -> bool:
        """Answer an offer on a new peer connection (an earlier one is closed first).

        False if no answer was sent: the ``stall_answer`` fault, or an offer aiortc
        cannot apply or answer, which is the client's fault and so an ``invalid offer``
        error (the new peer connection closed), not a server failure.
        """
        if self.server.faults.stall_answer:
            return False
        if self.pc is not None:
            await self.pc.close()
            self.candidates.reset()
        pc = create_peer_connection()
        self.pc = pc

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed",) and self.pc is pc:
                await self.ws.close()

        after_remote = attach(pc)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:
            return await self._reject_offer(pc, exc)
        if after_remote is not None:
            after_remote()
        for candidate in self.candidates.release():
            await self._add_candidate(candidate)
        try:
            answer = await pc.createAnswer()
            with gather_on_loopback(is_loopback_host(self.server.settings.host)):
                await pc.setLocalDescription(answer)
        except Exception as exc:
            return await self._reject_offer(pc, exc)
        await self.send(p.Answer(sdp=pc.localDescription.sdp))
        await self.send(
            p.SessionIdMessage(
                session_id=self.session_id,
                server_ip=self.server.settings.host,
                server_port=self.server.port,
            )
        )
        return True

    async def _reject_offer(self, pc: RTCPeerConnection, exc: Exception) -> bool:
        self.server.count("protocol_errors")
        if self.pc is pc:
            self.pc = None
        self.candidates.reset()  # what was trickled for this offer is moot
        await pc.close()
        await self.send(p.ErrorMessage(error=f"invalid offer: {exc}"))
        return False

    async def _add_candidate(self, candidate: p.IceCandidate) -> None:
        if self.pc is None:
            return
        try:
            await self.pc.addIceCandidate(candidate_from_wire(candidate))
        except Exception:
            self.server.count("protocol_errors")

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()
        if not self.ws.closed:
            await self.ws.close()
