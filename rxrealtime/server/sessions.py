"""The reference server's two kinds of client: a streaming session, or a viewer of one.

A :class:`ServerSession` owns a prompt, the generated video and the billing clock; a
:class:`ViewerSession` only receives what one session generates and announces. A
session's media is an aiortc peer (it sent an offer) or, in LiveKit mode, a LiveKit
room (it sent ``livekit_join``); prompts, acks, ticks and faults are the same for both.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import random
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import WSCloseCode, web
from aiortc import MediaStreamTrack, RTCPeerConnection

from .. import protocol as p
from ..media import SyntheticTrack
from ..models import MODELS
from ..options import MAX_PROMPT_CHARS
from ..transports.jitter import install as install_jitter_buffer
from ..transports.senders import install_sender_rules
from .clock import TickLedger, run_billing_clock
from .context import ServerContext
from .delivery import DeliveryBook, TcpProgress
from .livekit_rooms import SessionRoom
from .peer import ServerPeer
from .video import GeneratedTrack, prompt_tint

__all__ = ["QUEUE_STEP_S", "SendObserver", "ServerSession", "ViewerSession"]

logger = logging.getLogger(__name__)

QUEUE_STEP_S = 0.2
"""One ``queue_position`` frame per step while the ``queue_for_s`` fault holds a session."""

ACK_LOOK_S = 0.05
"""When a written tick's acknowledgment is first looked for (a loopback or LAN round trip
is well under it; a path with a longer one is looked at again at the next tick)."""

SendObserver = Callable[["ServerSession", p.ServerMessage], None]
"""Told of each frame a streaming session sends its client, just before it is written."""


class ServerSession(ServerPeer):
    """A streaming client's server session: prompt, generated video and billing clock."""

    server: ServerContext[ServerSession]  # more of the server than signaling alone needs

    def __init__(
        self,
        server: ServerContext[ServerSession],
        ws: web.WebSocketResponse,
        model: str,
        transport: asyncio.Transport | None = None,
    ) -> None:
        super().__init__(server, ws)
        self.id = uuid.uuid4().hex
        self.model = model
        self.transport = transport
        """The request's TCP transport: what a dropped network closes."""
        self.prompt = ""
        self.tint = prompt_tint("")
        self.image: bytes | None = None
        self.ledger = TickLedger()
        self.delivery = DeliveryBook()
        """Ticks written and the ones the client's TCP acknowledged (a dead path's)."""
        self._tcp = TcpProgress(transport)
        self.output: GeneratedTrack | None = None
        self.room: SessionRoom | None = None
        """The session's LiveKit room, once it sent ``livekit_join`` (LiveKit mode)."""
        self.viewers: set[ViewerSession] = set()
        self._clock: asyncio.Task[None] | None = None
        self._starter: asyncio.Task[None] | None = None
        self._timers: list[asyncio.Task[None]] = []
        self._started = False
        self._started_at: float | None = None
        self._ending = False
        self._queued = False
        self._closing = False

    @property
    def video_format(self) -> tuple[int, int, float]:
        """The model's size and frame rate: what the LiveKit participant's encoding is
        made for (an unknown model name: the current catalogue's 1280x720 at 30)."""
        model = MODELS.get(self.model)
        return (model.width, model.height, float(model.fps)) if model else (1280, 720, 30.0)

    @property
    def session_id(self) -> str:
        return self.id

    @property
    def billed(self) -> int:
        return self.ledger.billed

    @property
    def ticks(self) -> int:
        return self.ledger.ticks

    @property
    def generation_started(self) -> bool:
        """Whether the first frame was generated (``generation_started`` is then due)."""
        return self._started

    async def send(self, message: p.ServerMessage) -> bool:
        for observer in self.server.on_send:
            observer(self, message)
        return await super().send(message)

    async def broadcast(self, message: p.ServerMessage) -> bool:
        """Send an event to the client and to every view-only subscriber.

        True if the client itself got it (viewers come and go; they do not count).
        """
        delivered = await self.send(message)
        for viewer in list(self.viewers):
            await viewer.send(message)
        return delivered

    async def send_tick(self, seconds: int) -> bool:
        """Broadcast the tick announcing ``seconds`` and note where its frame ends in the
        connection's bytes, for :meth:`billed_when_closed` (acknowledged so far: before)."""
        self._note_acked()
        delivered = await self.broadcast(p.GenerationTick(seconds=seconds))
        ends_at = self._tcp.written() if delivered else None
        if ends_at is not None:
            self.delivery.sent(seconds, ends_at)
            # a healthy path acknowledges within a round trip: look again soon after
            asyncio.get_running_loop().call_later(ACK_LOOK_S, self._note_acked)
        return delivered

    async def handle(self, frame: p.ClientMessage) -> None:
        if isinstance(frame, p.PromptMessage):
            await self.on_prompt(frame)
        elif isinstance(frame, p.SetImageMessage):
            await self.on_set_image(frame)
        elif isinstance(frame, p.LivekitJoin):
            await self.on_livekit_join()
        else:
            await super().handle(frame)

    async def _ack_fault(self) -> str | None:
        """Apply the ack faults; the error text to reject with, if any."""
        faults = self.server.faults
        if faults.ack_delay_s:
            await asyncio.sleep(faults.ack_delay_s)
        return "rejected by fault injection" if faults.fail_acks else None

    async def on_prompt(self, frame: p.PromptMessage) -> None:
        text = frame.prompt
        if (error := await self._ack_fault()) is not None:
            await self.send(p.PromptAck(prompt=text, success=False, error=error))
            return
        if not text.strip() or len(text) > MAX_PROMPT_CHARS:
            error = f"prompt must be 1 to {MAX_PROMPT_CHARS} characters"
            await self.send(p.PromptAck(prompt=text, success=False, error=error))
            return
        self.prompt, self.tint = text, prompt_tint(text)
        await self.send(p.PromptAck(prompt=text, success=True, error=None))

    async def on_set_image(self, frame: p.SetImageMessage) -> None:
        if (error := await self._ack_fault()) is not None:
            await self.send(p.SetImageAck(success=False, error=error))
            return
        if frame.image_data is None:
            self.image = None
        else:
            try:
                self.image = base64.b64decode(frame.image_data, validate=True)
            except (binascii.Error, ValueError):
                await self.send(p.SetImageAck(success=False, error="image_data is not base64"))
                return
        if frame.prompt:
            self.prompt, self.tint = frame.prompt, prompt_tint(frame.prompt)
        await self.send(p.SetImageAck(success=True, error=None))

    async def _wait_in_queue(self) -> None:
        """The ``queue_for_s`` fault, before the first answer: positions counting down to 1."""
        wait, first = self.server.faults.queue_for_s, not self._queued
        self._queued = True
        if not wait or not first:
            return
        steps = max(1, round(wait / QUEUE_STEP_S))
        for position in range(steps, 0, -1):
            await self.send(p.QueuePosition(position=position, queue_size=steps))
            await asyncio.sleep(wait / steps)

    async def on_livekit_join(self) -> None:
        """Answer with the session's room (made on the first join; a repeat gets the same)."""
        rooms = self.server.livekit
        if rooms is None:
            error = "livekit_join: this server negotiates media with offers (serve --media livekit)"
            await self.send(p.ErrorMessage(error=error))
            return
        if self.server.faults.stall_answer:
            return
        await self._wait_in_queue()
        if self.room is None:
            try:
                room = await rooms.open_room(self.id, self, publish=self.video_format)
            except Exception as exc:  # the LiveKit server refused or is unreachable
                self.server.count("livekit_errors")
                logger.warning("opening a LiveKit room for %s failed: %s", self.id, exc)
                await self.send(p.ErrorMessage(error="cannot open a LiveKit room, retry later"))
                return
            if self.closed:  # the socket went away meanwhile
                await room.close()
                return
            self.room = room
            self.server.rooms[room.name] = self
        await self.send(self.room.info)

    async def on_offer(self, sdp: str) -> None:
        await self._wait_in_queue()

        def attach(pc: RTCPeerConnection) -> Callable[[], None]:
            received: list[MediaStreamTrack] = []

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                for transceiver in pc.getTransceivers():
                    if transceiver.receiver.track is track:
                        install_jitter_buffer(transceiver.receiver)  # as a real service recovers
                if track.kind == "video" and not received:
                    received.append(track)
                    self._set_output(pc, track)

            def after_remote() -> None:
                # A receive-only client (no video of its own): generate from the prompt alone.
                if not received:
                    self._set_output(pc, SyntheticTrack())

            return after_remote

        await self.negotiate(sdp, attach)

    def _set_output(self, pc: RTCPeerConnection, source: MediaStreamTrack) -> None:
        if self.output is not None:  # a new offer (ice-restart) replaces the old output
            self.output.stop()
        self.output = GeneratedTrack(source, self)
        install_sender_rules(pc.addTrack(self.server.relay.subscribe(self.output, buffered=False)))

    def frame_due(self) -> bool:
        faults = self.server.faults
        start = self._started_at
        if faults.freeze_video_after_s is not None and start is not None:
            since = asyncio.get_running_loop().time() - start - faults.freeze_video_after_s
            if 0 <= since < faults.freeze_video_for_s:
                return False
        drop = faults.drop_generated_frames
        return not (drop and random.random() < drop)

    def on_frame(self) -> None:
        if not self._started and not self._closing:
            self._started_at = asyncio.get_running_loop().time()
            self._started = True
            self._starter = asyncio.ensure_future(self._start_generation())

    async def _start_generation(self) -> None:
        await self.broadcast(p.GenerationStarted())
        server = self.server
        self._clock = asyncio.ensure_future(
            run_billing_clock(self, self.ledger, server.settings, server.count)
        )
        faults = server.faults
        if faults.drop_socket_after_s is not None and server.take_drop():
            self.ledger.drop_due = asyncio.get_running_loop().time() + faults.drop_socket_after_s
        for cut_after_s in (faults.close_peer_after_s, faults.drop_room_after_s):
            if cut_after_s is not None and server.take_drop():
                self._later(cut_after_s, self._close_peer)
        restart = faults.ice_restart_after_s
        if restart is not None and self.room is None and not server.counters.get("ice_restarts"):
            server.count("ice_restarts")
            self._later(restart, self._send_ice_restart)

    def _later(self, delay: float, action: Callable[[], Awaitable[None]]) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            await action()

        self._timers.append(asyncio.ensure_future(run()))

    def drop(self) -> None:
        """Ask for a dropped network at the next tick (drops happen on tick boundaries)."""
        self.ledger.drop_due = 0.0

    def drop_socket(self) -> None:
        """A dropped connection: TCP ends without a WebSocket close, nothing more is sent.

        ``close()`` rather than ``abort()``: what was written before still arrives, as
        on a real network, where an RST racing in-flight data is a kernel artefact that
        would make "no tick lost" untestable.
        """
        self.server.count("socket_drops")
        self._note_acked()  # what arrived before the drop stays billed
        if self.transport is not None:
            self.transport.close()

    async def _close_peer(self) -> None:
        """Cut the client's media: close the peer connection, or remove it from its room."""
        if self.room is not None:
            self.server.count("room_drops")
            await self.room.drop_client()
            return
        self.server.count("peer_closes")
        if self.pc is not None:
            await self.pc.close()

    async def _send_ice_restart(self) -> None:
        turn = p.TurnConfig(username="rxrealtime", credential="turn-secret",
                            server_url=self.server.faults.turn_url)  # fmt: skip
        await self.send(p.IceRestart(turn_config=turn))

    async def end(self, reason: str, error: str | None = None) -> None:
        """End generation on the server's initiative and close the session."""
        if self._ending:
            return
        self._ending = True
        if error:
            await self.broadcast(p.ErrorMessage(error=error))
        await self.broadcast(p.GenerationEnded(seconds=self.billed, reason=reason))
        await self.ws.close()

    def _note_acked(self) -> None:
        acked = self._tcp.acked()
        if acked is not None:
            self.delivery.acked(acked)

    def billed_when_closed(self) -> int:
        """The seconds billed once the connection is over: a connection that ended without
        a close handshake (the path went dark, the client gave up) keeps only the ticks
        its client's TCP acknowledged; the ones queued into the dark never arrived."""
        self._note_acked()
        if self.ws.close_code not in (None, WSCloseCode.ABNORMAL_CLOSURE):
            return self.billed
        return self.billed - self.delivery.unconfirmed_seconds

    async def close(self) -> None:
        self._closing = True  # a late frame starts no clock
        tasks = [t for t in (self._clock, self._starter, *self._timers) if t is not None]
        current = asyncio.current_task()
        for task in tasks:
            if task is not current:
                task.cancel()
        try:
            await asyncio.gather(*(t for t in tasks if t is not current), return_exceptions=True)
        finally:  # recorded even if this close is itself cancelled
            self.server.billed_by_session[self.id] = self.billed_when_closed()
        room, self.room = self.room, None
        if room is not None:
            self.server.rooms.pop(room.name, None)
            await room.close()
        for viewer in list(self.viewers):
            await viewer.close()
        if self.output is not None:
            self.output.stop()
        await super().close()


class ViewerSession(ServerPeer):
    """A view-only subscriber: receives a session's generated video and its events."""

    server: ServerContext[ServerSession]

    def __init__(
        self, server: ServerContext[ServerSession], ws: web.WebSocketResponse, target: ServerSession
    ) -> None:
        super().__init__(server, ws)
        self.target = target

    @property
    def session_id(self) -> str:
        return self.target.id

    async def on_offer(self, sdp: str) -> None:
        def attach(pc: RTCPeerConnection) -> Callable[[], None]:
            def after_remote() -> None:
                if self.target.output is not None:
                    track = self.server.relay.subscribe(self.target.output, buffered=False)
                    install_sender_rules(pc.addTrack(track))

            return after_remote

        if not await self.negotiate(sdp, attach):
            return
        if self.target.generation_started:
            await self.send(p.GenerationStarted())

    async def close(self) -> None:
        self.target.viewers.discard(self)
        await super().close()
