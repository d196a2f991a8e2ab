"""The embedded reference server: PROTOCOL.md on loopback, for the demo and every test.

Real aiohttp WebSocket signaling and a real aiortc peer that sends back the client's
video with a visible, prompt-dependent transform (numpy on each frame). A billing
clock sends ``generation_tick`` every ``tick_interval_s``; each tick bills
``seconds_per_tick`` seconds, so tests can run the clock faster than real time while
the totals stay whole numbers. :class:`Faults` switches misbehaviour on for tests.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal, cast

import numpy as np
from aiohttp import WSMsgType, web
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from av import VideoFrame
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from . import protocol as p
from .exceptions import ConfigError, ProtocolError
from .media import SyntheticTrack
from .options import MAX_PROMPT_CHARS, describe_validation_error
from .transport import (
    candidate_from_wire,
    create_peer_connection,
    gather_on_loopback,
    is_loopback_host,
)

__all__ = [
    "EmbeddedServer",
    "Faults",
    "ServerSettings",
    "prompt_tint",
    "serve_embedded",
    "transform_frame",
]

logger = logging.getLogger(__name__)

STREAM_PATHS = ("/v1/stream", "/v1/avatar-live/stream")


BadFrame = Literal["malformed", "unknown_type", "wrong_type", "binary", "oversized"]

BAD_FRAMES: dict[str, str | bytes] = {
    "malformed": '{"type": "generation_tick", "seconds": ',
    "unknown_type": '{"type": "teleport", "where": "mars"}',
    "wrong_type": '{"type": "generation_tick", "seconds": "many"}',
    "binary": b"\x00\x01\x02 not a text frame",
}


class Faults(BaseModel):
    """Misbehaviour to inject, for tests of the client's resilience.

    Mutable at run time (``server.faults.ack_delay_s = 2``): each switch is read when it
    matters, so a test can turn a fault on after the session is up.
    """

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, use_attribute_docstrings=True
    )

    reject_auth: bool = False
    """Answer every connection with ``error: invalid api key``, whatever the key."""
    refuse_first: int = Field(default=0, ge=0)
    """Refuse the first K connections with a (transient) capacity error."""
    drop_socket_after_s: float | None = Field(default=None, ge=0)
    """Abort the TCP connection of a generating session after this many seconds, no close frame."""
    close_peer_after_s: float | None = Field(default=None, ge=0)
    """Close the peer connection of a generating session after this many seconds."""
    max_drops: int = Field(default=1, ge=0)
    """How many sessions the two switches above hit in all (0: every session)."""
    stall_ticks_after: int | None = Field(default=None, ge=0)
    """After this many ticks, stop sending ticks (billing goes on) for ``stall_ticks_for_s``."""
    stall_ticks_for_s: float = Field(default=2.0, ge=0)
    bad_frames: tuple[BadFrame, ...] = ()
    """Bad frames sent after every ``bad_frames_every_n_ticks``-th tick."""
    bad_frames_every_n_ticks: int = Field(default=1, gt=0)
    oversized_frame_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    ack_delay_s: float = Field(default=0.0, ge=0)
    """Wait this long before answering ``prompt`` and ``set_image``."""
    fail_acks: bool = False
    """Answer ``prompt`` and ``set_image`` with ``success: false``."""
    ice_restart_after_s: float | None = Field(default=None, ge=0)
    """Send ``ice-restart`` (with ``turn_url``) this long after generation starts, once."""
    turn_url: str = "turn:127.0.0.1:9?transport=tcp"
    stall_answer: bool = False
    """Never answer offers (the client's connect timeout fires)."""

    def bad_frame(self, kind: str) -> str | bytes:
        if kind == "oversized":
            padding = "x" * self.oversized_frame_bytes
            return f'{{"type": "error", "error": "{padding}"}}'
        return BAD_FRAMES[kind]


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    api_key: SecretStr = Field(default_factory=lambda: SecretStr("rt_" + secrets.token_urlsafe(18)))
    tick_interval_s: float = Field(default=1.0, gt=0, le=3600)
    seconds_per_tick: int = Field(default=1, ge=1)
    credits_s: int | None = Field(default=None, ge=0)
    """Billed seconds a server session may generate before "insufficient credits"."""
    max_frame_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Frames above this are counted and ignored; 8x above it the socket is closed."""
    faults: Faults = Field(default_factory=Faults)


def prompt_tint(prompt: str) -> tuple[int, int, int]:
    """The colour a prompt paints on the video: stable, bright enough to see."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    return (64 + digest[0] % 192, 64 + digest[1] % 192, 64 + digest[2] % 192)


def transform_frame(rgb: np.ndarray, tint: tuple[int, int, int]) -> np.ndarray:
    """The "generation": a solid band of the prompt's tint on top, the rest blended with it."""
    out = (rgb >> 1) + (np.asarray(tint, dtype=np.uint8) >> 1)
    band = max(2, rgb.shape[0] // 6)
    out[:band] = tint
    return out


class GeneratedTrack(MediaStreamTrack):
    """The server's output: the source video transformed by the current prompt."""

    kind = "video"

    def __init__(self, source: MediaStreamTrack, session: ServerSession) -> None:
        super().__init__()
        self._source = source
        self._session = session

    async def recv(self) -> VideoFrame:
        frame = cast(VideoFrame, await self._source.recv())
        self._session.on_frame()
        rgb = transform_frame(frame.to_ndarray(format="rgb24"), self._session.tint)
        # Hand encoders yuv420p: they would otherwise convert this frame themselves, and
        # two peers (client + viewers, via MediaRelay) converting one frame at once in
        # encoder threads crashes libav (aiortc issue #767).
        out = VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        out.pts, out.time_base = frame.pts, frame.time_base
        return out

    def stop(self) -> None:
        super().stop()
        self._source.stop()


class _Peer:
    """One WebSocket client of the server (a streaming client or a view-only subscriber)."""

    def __init__(self, server: EmbeddedServer, ws: web.WebSocketResponse) -> None:
        self.server = server
        self.ws = ws
        self.pc: RTCPeerConnection | None = None
        self.remote_set = False
        self.early_candidates: list[p.IceCandidate] = []

    async def send(self, message: p.ServerMessage) -> bool:
        """Send one frame; False if the client is gone."""
        if self.ws.closed:
            return False
        try:
            await self.ws.send_str(p.encode(message).decode())
        except (ConnectionError, RuntimeError):
            return False
        return True

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
            if not self.remote_set or self.pc is None:
                self.early_candidates.append(frame.candidate)
            else:
                await self._add_candidate(frame.candidate)

    @property
    def session_id(self) -> str:
        """The server session this peer belongs to (sent after each answer)."""
        raise NotImplementedError

    async def on_offer(self, sdp: str) -> None:
        raise NotImplementedError

    async def negotiate(self, sdp: str, attach: Any) -> bool:
        """Answer an offer; ``attach(pc)`` adds tracks once the remote offer is applied.

        False if no answer was sent (a bad offer, or the ``stall_answer`` fault).
        """
        if self.server.faults.stall_answer:
            return False
        if self.pc is not None:
            await self.pc.close()
        pc = create_peer_connection()
        self.pc, self.remote_set = pc, False

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed",) and self.pc is pc:
                await self.ws.close()

        attach_result = attach(pc)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:
            self.server.count("protocol_errors")
            await self.send(p.ErrorMessage(error=f"invalid offer: {exc}"))
            return False
        if attach_result is not None:
            attach_result()
        self.remote_set = True
        for candidate in self.early_candidates:
            await self._add_candidate(candidate)
        self.early_candidates = []
        answer = await pc.createAnswer()
        with gather_on_loopback(is_loopback_host(self.server.settings.host)):
            await pc.setLocalDescription(answer)
        await self.send(p.Answer(sdp=pc.localDescription.sdp))
        await self.send(
            p.SessionIdMessage(
                session_id=self.session_id,
                server_ip=self.server.settings.host,
                server_port=self.server.port,
            )
        )
        return True

    async def _add_candidate(self, candidate: p.IceCandidate) -> None:
        assert self.pc is not None
        try:
            await self.pc.addIceCandidate(candidate_from_wire(candidate))
        except Exception:
            self.server.count("protocol_errors")

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()
        if not self.ws.closed:
            await self.ws.close()


class ServerSession(_Peer):
    """A streaming client's server session: prompt, generated video and billing clock."""

    def __init__(self, server: EmbeddedServer, ws: web.WebSocketResponse, model: str) -> None:
        super().__init__(server, ws)
        self.id = uuid.uuid4().hex
        self.model = model
        self.prompt = ""
        self.tint = prompt_tint("")
        self.image: bytes | None = None
        self.billed = 0
        self.ticks = 0
        self.output: GeneratedTrack | None = None
        self.viewers: set[ViewerSession] = set()
        self._clock: asyncio.Task[None] | None = None
        self._starter: asyncio.Task[None] | None = None
        self._timers: list[asyncio.Task[None]] = []
        self.transport: asyncio.Transport | None = None
        self.drop_due: float | None = None
        self._started = False
        self._ending = False

    @property
    def session_id(self) -> str:
        return self.id

    async def broadcast(self, message: p.ServerMessage) -> bool:
        """Send an event to the client and to every view-only subscriber.

        True if the client itself got it (viewers come and go; they do not count).
        """
        delivered = await self.send(message)
        for viewer in list(self.viewers):
            await viewer.send(message)
        return delivered

    async def handle(self, frame: p.ClientMessage) -> None:
        if isinstance(frame, p.PromptMessage):
            await self.on_prompt(frame)
        elif isinstance(frame, p.SetImageMessage):
            await self.on_set_image(frame)
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

    async def on_offer(self, sdp: str) -> None:
        def attach(pc: RTCPeerConnection) -> Any:
            received: list[MediaStreamTrack] = []

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                if track.kind == "video" and not received:
                    received.append(track)
                    self._set_output(pc, track)

            def after_remote() -> None:
                # A receive-only client (no video of its own): generate from the prompt alone.
                if not received:
                    self._set_output(pc, SyntheticTrack())

            return after_remote

        if not await self.negotiate(sdp, attach):
            return

    def _set_output(self, pc: RTCPeerConnection, source: MediaStreamTrack) -> None:
        if self.output is not None:  # a new offer (ice-restart) replaces the old output
            self.output.stop()
        self.output = GeneratedTrack(source, self)
        pc.addTrack(self.server.relay.subscribe(self.output, buffered=False))

    def on_frame(self) -> None:
        if not self._started:
            self._started = True
            self._starter = asyncio.ensure_future(self._start_generation())

    async def _start_generation(self) -> None:
        await self.broadcast(p.GenerationStarted())
        self._clock = asyncio.ensure_future(self._billing_clock())
        faults = self.server.faults
        if faults.drop_socket_after_s is not None and self.server.take_drop():
            self.drop_due = asyncio.get_running_loop().time() + faults.drop_socket_after_s
        if faults.close_peer_after_s is not None and self.server.take_drop():
            self._later(faults.close_peer_after_s, self._close_peer)
        if faults.ice_restart_after_s is not None and not self.server.counters.get("ice_restarts"):
            self.server.count("ice_restarts")
            self._later(faults.ice_restart_after_s, self._send_ice_restart)

    def _later(self, delay: float, action: Any) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            await action()

        self._timers.append(asyncio.ensure_future(run()))

    def drop(self) -> None:
        """Ask for a dropped network at the next tick (see ``_billing_clock``)."""
        self.drop_due = 0.0

    def _drop_socket(self) -> None:
        """A dropped connection: TCP ends without a WebSocket close, nothing more is sent.

        ``close()`` rather than ``abort()``: what was written before still arrives, as
        on a real network, where an RST racing in-flight data is a kernel artefact that
        would make "no tick lost" untestable.
        """
        self.server.count("socket_drops")
        if self.transport is not None:
            self.transport.close()

    async def _close_peer(self) -> None:
        self.server.count("peer_closes")
        if self.pc is not None:
            await self.pc.close()

    async def _send_ice_restart(self) -> None:
        turn = p.TurnConfig(username="rxrealtime", credential="turn-secret",
                            server_url=self.server.faults.turn_url)  # fmt: skip
        await self.send(p.IceRestart(turn_config=turn))

    async def _billing_clock(self) -> None:
        """Bill and announce one tick per interval.

        A second counts as billed only once its tick is written to the client, so the
        server's total and the client's last tick agree even when the client vanishes.
        Socket drops happen here, on a tick boundary, so no tick is ever half-sent:
        a test can then demand that not one tick is lost.
        """
        settings, faults = self.server.settings, self.server.faults
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        stalled_until = 0.0
        while not self.ws.closed:
            next_at += settings.tick_interval_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if self.drop_due is not None and loop.time() >= self.drop_due:
                self._drop_socket()
                return
            if faults.stall_ticks_after is not None and self.ticks == faults.stall_ticks_after:
                if not stalled_until:
                    stalled_until = loop.time() + faults.stall_ticks_for_s
                    self.server.count("stalls")
                if loop.time() < stalled_until:
                    self.billed += settings.seconds_per_tick  # generation goes on, unannounced
                    continue
            tick = p.GenerationTick(seconds=self.billed + settings.seconds_per_tick)
            if not await self.broadcast(tick):
                return  # the client is gone: nothing more is generated or billed
            self.billed, self.ticks = tick.seconds, self.ticks + 1
            self.server.count("ticks")
            if faults.bad_frames and self.ticks % faults.bad_frames_every_n_ticks == 0:
                for kind in faults.bad_frames:
                    await self._send_raw(faults.bad_frame(kind))
            if settings.credits_s is not None and self.billed >= settings.credits_s:
                await self.end("insufficient_credits", "insufficient credits")
                return

    async def _send_raw(self, frame: str | bytes) -> None:
        if self.ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            if isinstance(frame, bytes):
                await self.ws.send_bytes(frame)
            else:
                await self.ws.send_str(frame)

    async def end(self, reason: str, error: str | None = None) -> None:
        """End generation on the server's initiative and close the session."""
        if self._ending:
            return
        self._ending = True
        if error:
            await self.broadcast(p.ErrorMessage(error=error))
        await self.broadcast(p.GenerationEnded(seconds=self.billed, reason=reason))
        await self.ws.close()

    async def close(self) -> None:
        tasks = [t for t in (self._clock, self._starter, *self._timers) if t is not None]
        current = asyncio.current_task()
        for task in tasks:
            if task is not current:
                task.cancel()
        try:
            await asyncio.gather(*(t for t in tasks if t is not current), return_exceptions=True)
        finally:  # recorded even if this close is itself cancelled
            self.server.billed_by_session[self.id] = self.billed
        for viewer in list(self.viewers):
            await viewer.close()
        if self.output is not None:
            self.output.stop()
        await super().close()


class ViewerSession(_Peer):
    """A view-only subscriber: receives a session's generated video and its events."""

    def __init__(self, server: EmbeddedServer, ws: web.WebSocketResponse, target: ServerSession):
        super().__init__(server, ws)
        self.target = target

    @property
    def session_id(self) -> str:
        return self.target.id

    async def on_offer(self, sdp: str) -> None:
        def attach(pc: RTCPeerConnection) -> Any:
            def after_remote() -> None:
                if self.target.output is not None:
                    pc.addTrack(self.server.relay.subscribe(self.target.output, buffered=False))

            return after_remote

        if not await self.negotiate(sdp, attach):
            return
        if self.target._started:
            await self.send(p.GenerationStarted())

    async def close(self) -> None:
        self.target.viewers.discard(self)
        await super().close()


class EmbeddedServer:
    """A running reference server; use :func:`serve_embedded` to get one."""

    def __init__(self, settings: ServerSettings | None = None, **overrides: Any) -> None:
        try:
            base = settings.model_dump() if settings is not None else {}
            if settings is not None:
                base["api_key"] = settings.api_key
            self.settings = ServerSettings(**{**base, **overrides})
        except ValidationError as exc:
            raise ConfigError(
                f"invalid server settings: {describe_validation_error(exc)}"
            ) from None
        self.sessions: dict[str, ServerSession] = {}
        self.billed_by_session: dict[str, int] = {}
        """Final billed seconds of every server session that has ended."""
        self.counters: dict[str, int] = {}
        self.relay = MediaRelay()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._peers: set[_Peer] = set()

    def __repr__(self) -> str:
        return f"<EmbeddedServer {self.url if self._runner else 'stopped'}>"

    @property
    def api_key(self) -> str:
        return self.settings.api_key.get_secret_value()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The service base URL for ``Session(url, ...)``."""
        host = self.settings.host
        host = f"[{host}]" if ":" in host else host
        return f"ws://{host}:{self._port}"

    @property
    def faults(self) -> Faults:
        return self.settings.faults

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def drop_session(self, session_id: str) -> None:
        """Simulate a network drop of one session at its next tick."""
        self.sessions[session_id].drop()

    def take_drop(self) -> bool:
        """Whether one more session may be hit by a drop fault (``max_drops``)."""
        limit = self.faults.max_drops
        if limit and self.counters.get("drops_planned", 0) >= limit:
            return False
        self.count("drops_planned")
        return True

    async def start(self) -> EmbeddedServer:
        app = web.Application()
        for path in STREAM_PATHS:
            app.router.add_get(path, self._handle_stream)
        app.router.add_get("/subscribe/{session_id}", self._handle_subscribe)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        self._port = self._runner.addresses[0][1]
        logger.info("embedded server listening on %s", self.url)
        return self

    async def stop(self) -> None:
        for peer in list(self._peers):
            try:
                await asyncio.wait_for(peer.close(), 5.0)
            except asyncio.TimeoutError:
                logger.warning("closing a peer of the embedded server timed out")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> EmbeddedServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def send_raw(self, frame: str | bytes, session_id: str | None = None) -> int:
        """Send a raw frame (text or binary) to one session or all; returns how many got it."""
        targets = [self.sessions[session_id]] if session_id else list(self.sessions.values())
        for session in targets:
            await session._send_raw(frame)
        return len(targets)

    def _authorized(self, request: web.Request) -> bool:
        if self.settings.faults.reject_auth:
            return False
        given = request.query.get("api_key", "").encode("utf-8")
        return hmac.compare_digest(given, self.api_key.encode("utf-8"))

    async def _accept(self, request: web.Request) -> tuple[web.WebSocketResponse, bool]:
        """Upgrade the request; a wrong key gets ``error: invalid api key`` and a close."""
        ws = web.WebSocketResponse(max_msg_size=8 * self.settings.max_frame_bytes)
        await ws.prepare(request)
        self.count("connections")
        if not self._authorized(request):
            self.count("auth_failures")
            await self._refuse(ws, "invalid api key", 4001)
            return ws, False
        if self.counters["connections"] <= self.faults.refuse_first:
            self.count("capacity_refusals")
            await self._refuse(ws, "capacity: no generation slot free, retry later", 4503)
            return ws, False
        return ws, True

    async def _refuse(self, ws: web.WebSocketResponse, error: str, code: int) -> None:
        await ws.send_str(p.encode(p.ErrorMessage(error=error)).decode())
        await ws.close(code=code, message=error.encode())

    async def _handle_stream(self, request: web.Request) -> web.StreamResponse:
        ws, ok = await self._accept(request)
        if not ok:
            return ws
        session = ServerSession(self, ws, request.query.get("model", ""))
        session.transport = request.transport
        self.sessions[session.id] = session
        self._peers.add(session)
        self.count("sessions")
        try:
            await session.serve()
        finally:
            self._peers.discard(session)
            self.sessions.pop(session.id, None)
        return ws

    async def _handle_subscribe(self, request: web.Request) -> web.StreamResponse:
        ws, ok = await self._accept(request)
        if not ok:
            return ws
        target = self.sessions.get(request.match_info["session_id"])
        if target is None:
            await ws.send_str(p.encode(p.ErrorMessage(error="invalid session")).decode())
            await ws.close()
            return ws
        viewer = ViewerSession(self, ws, target)
        target.viewers.add(viewer)
        self._peers.add(viewer)
        try:
            await viewer.serve()
        finally:
            self._peers.discard(viewer)
        return ws


@contextlib.asynccontextmanager
async def serve_embedded(
    settings: ServerSettings | None = None, **overrides: Any
) -> AsyncIterator[EmbeddedServer]:
    """Run the reference server on a free loopback port for the duration of the block."""
    server = EmbeddedServer(settings, **overrides)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
