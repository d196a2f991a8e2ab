"""Tape playback: the embedded server plays the server's side of a recorded session.

``rxrealtime serve --tape FILE`` (``serve_embedded(tape=...)``): each connection gets
the next recorded server session of the tape (a *segment*: what one socket saw, up to
its link going down), with real WebRTC negotiation and the usual generated video. When
the client's first video frame is generated, the segment's recorded frames
(``generation_started``, ticks, ``generation_ended``, errors, queue positions) are sent
at their recorded offsets from the recorded ``generation_started``; the link goes down
as it did (a dropped socket, or a close with the recorded code). Prompts and images are
answered with the recorded acks, after the recorded delay. A client connecting to it
therefore sees the tick sequence the recorded client saw. Connections after the last
segment start the tape over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from .. import protocol as p
from ..tapes import Tape, load
from ..tapes.format import LinkRecord
from .context import ServerContext
from .sessions import ServerSession
from .video import prompt_tint

__all__ = ["Segment", "TapePlayback", "TapeSession"]

logger = logging.getLogger(__name__)

#: Server frames played at their time; acks answer requests, negotiation is live.
TIMED = (p.GenerationStarted, p.GenerationTick, p.GenerationEnded, p.ErrorMessage,
         p.QueuePosition)  # fmt: skip


@dataclass
class Segment:
    """One recorded server session: frames by offset, acks, and how its link ended.

    ``before`` are offsets from the segment's first frame, played before answering the
    offer (queue positions, errors while connecting); ``frames`` are offsets from the
    recorded ``generation_started``, played from the first generated frame on.
    """

    before: list[tuple[float, p.ServerMessage]] = field(default_factory=list)
    frames: list[tuple[float, p.ServerMessage]] = field(default_factory=list)
    prompt_acks: list[tuple[float, p.PromptAck]] = field(default_factory=list)
    image_acks: list[tuple[float, p.SetImageAck]] = field(default_factory=list)
    end: tuple[float, LinkRecord] | None = None
    """When (from ``generation_started``) and how the link went down, if it did."""


def _segments(tape: Tape) -> list[Segment]:
    """The tape cut at each link going down; acks keep their delay after the request."""
    segments: list[Segment] = []
    raw: list[tuple[float, p.ServerMessage]] = []
    sent: dict[str, float] = {}  # request kind -> when the last one was sent
    segment = Segment()

    def close(end: tuple[float, LinkRecord] | None) -> None:
        nonlocal segment, raw
        anchor = next((t for t, f in raw if isinstance(f, p.GenerationStarted)), None)
        first = raw[0][0] if raw else 0.0
        for t, frame in raw:
            if anchor is not None and t >= anchor:
                segment.frames.append((t - anchor, frame))
            else:
                segment.before.append((t - first, frame))
        if end is not None:
            segment.end = (end[0] - (anchor if anchor is not None else first), end[1])
        if raw or segment.prompt_acks or segment.image_acks or end is not None:
            segments.append(segment)
        segment, raw = Segment(), []

    for record in tape.records:
        kind, value = record.kind, record.value
        if kind in ("in", "refused") and isinstance(value, TIMED):
            raw.append((record.t, value))
        elif kind == "out" and isinstance(value, p.PromptMessage):
            sent["prompt"] = record.t
        elif kind == "out" and isinstance(value, p.SetImageMessage):
            sent["image"] = record.t
        elif kind == "in" and isinstance(value, p.PromptAck):
            segment.prompt_acks.append((record.t - sent.get("prompt", record.t), value))
        elif kind == "in" and isinstance(value, p.SetImageAck):
            segment.image_acks.append((record.t - sent.get("image", record.t), value))
        elif kind == "link" and not value.up:
            close((record.t, value))
    close(None)
    return segments


class TapePlayback:
    """A tape's segments, handed to connections in turn (see the module docstring)."""

    def __init__(self, tape: Tape) -> None:
        self.tape = tape
        self.segments = _segments(tape) or [Segment()]
        self.served = 0

    @classmethod
    def load(cls, path: str | Path) -> TapePlayback:
        """Read the tape (raises :class:`~rxrealtime.tapes.TapeError`)."""
        return cls(load(path))

    def next_segment(self) -> Segment:
        segment = self.segments[self.served % len(self.segments)]
        self.served += 1
        return segment

    def session(
        self,
        server: ServerContext[ServerSession],
        ws: web.WebSocketResponse,
        model: str,
        transport: asyncio.Transport | None = None,
    ) -> TapeSession:
        """A server session for a new connection, playing the next segment."""
        return TapeSession(server, ws, model, self.next_segment(), transport=transport)


class TapeSession(ServerSession):
    """A streaming session that plays a recorded segment instead of its billing clock."""

    def __init__(
        self,
        server: ServerContext[ServerSession],
        ws: web.WebSocketResponse,
        model: str,
        segment: Segment,
        transport: asyncio.Transport | None = None,
    ) -> None:
        super().__init__(server, ws, model, transport=transport)
        self.segment = segment
        self._prompt_acks = list(segment.prompt_acks)
        self._image_acks = list(segment.image_acks)
        self._played_before = False
        self._playing: asyncio.Task[None] | None = None

    async def on_offer(self, sdp: str) -> None:
        if not self._played_before:
            self._played_before = True
            await self._play(self.segment.before)
        await super().on_offer(sdp)

    def on_frame(self) -> None:
        if self._playing is None and not self.closed:
            self._playing = asyncio.ensure_future(self._play_generation())

    async def _play(self, frames: list[tuple[float, p.ServerMessage]]) -> None:
        """Send ``frames`` at their offsets from now; a sent tick is billed."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for offset, frame in frames:
            await asyncio.sleep(max(0.0, start + offset - loop.time()))
            if not await self.broadcast(frame):
                return
            if isinstance(frame, p.GenerationTick):
                self.ledger.delivered(frame.seconds)
                self.server.count("ticks")

    async def _play_generation(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await self._play(self.segment.frames)
        if self.segment.end is None:
            return
        offset, link = self.segment.end
        await asyncio.sleep(max(0.0, start + offset - loop.time()))
        if link.code is None or link.code == 1006:
            if link.error == "ConnectionLost":
                self.drop_socket()
        else:
            self.server.count("tape_closes")
            await self.ws.close(code=link.code)

    async def on_prompt(self, frame: p.PromptMessage) -> None:
        recorded = next((i for i, (_, a) in enumerate(self._prompt_acks)
                         if a.prompt == frame.prompt), None)  # fmt: skip
        if recorded is None:
            await super().on_prompt(frame)
            return
        delay, ack = self._prompt_acks.pop(recorded)
        await asyncio.sleep(delay)
        if ack.success:
            self.prompt, self.tint = frame.prompt, prompt_tint(frame.prompt)
        await self.send(ack)

    async def on_set_image(self, frame: p.SetImageMessage) -> None:
        if not self._image_acks:
            await super().on_set_image(frame)
            return
        delay, ack = self._image_acks.pop(0)
        await asyncio.sleep(delay)
        await self.send(ack)

    async def close(self) -> None:
        task = self._playing
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await super().close()
