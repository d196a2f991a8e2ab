"""Where the core meets the shell and the media transport, without a socket.

The core names its output streams by :class:`~rxrealtime.core.events.Stream`, and the
shell maps each to a real stream once; a frame a media transport declares reaches that
transport only, and the core learns from it only what the transport accepted. The shell
runs here on an in-memory signaling channel that answers ``livekit_join`` the way a
server would.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import rxrealtime as rt
from rxrealtime import protocol as p
from rxrealtime.asyncio.shell import CONTROL_FRAMES, SessionShell, emit_targets
from rxrealtime.asyncio.signaling import FrameRouter
from rxrealtime.core.events import Stream
from rxrealtime.core.policy import CoreConfig
from rxrealtime.options import build_options
from rxrealtime.session_streams import SessionStreams
from rxrealtime.streams import HotStream
from rxrealtime.transports.base import MediaContext

BAD_ROOM = p.LivekitRoomInfo(livekit_url="ftp:/nowhere", token="tok-bad", room_name="r",
                             session_id="s-bad")  # fmt: skip


def test_every_emit_target_is_a_real_stream_of_the_session() -> None:
    streams = SessionStreams()
    targets = emit_targets(streams)
    assert set(targets) == set(Stream)  # no target the shell cannot carry out
    for target, stream in targets.items():
        assert isinstance(stream, HotStream)
        assert streams.streams[target.value] is stream  # the stream the member names


def test_a_frame_has_one_owner_the_core_or_the_transport_never_both() -> None:
    from rxrealtime.transports.livekit import LivekitTransport

    assert p.LivekitRoomInfo not in CONTROL_FRAMES
    assert not set(LivekitTransport.handles) & set(CONTROL_FRAMES)


class RoomInfoSignaling:
    """A signaling channel in memory: answers ``livekit_join`` with ``answer``."""

    close_code: int | None = None

    def __init__(self, answer: p.LivekitRoomInfo) -> None:
        self.answer = answer
        self.inbox: asyncio.Queue[p.ServerMessage] = asyncio.Queue()

    async def open(self) -> None:
        return None

    async def send(self, message: p.ClientMessage) -> None:
        if isinstance(message, p.LivekitJoin):
            self.inbox.put_nowait(self.answer)

    async def read(self, router: FrameRouter) -> None:
        while True:
            router.route(await self.inbox.get())

    async def close(self, drain_s: float = 0.0, reader: asyncio.Task[None] | None = None) -> None:
        if reader is not None and not reader.done():
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


def livekit_shell(answer: p.LivekitRoomInfo) -> tuple[SessionShell, dict[str, list[Any]]]:
    pytest.importorskip("livekit.rtc")
    streams = SessionStreams()
    seen: dict[str, list[Any]] = {name: [] for name in ("errors", "session_started")}
    streams.errors.subscribe(seen["errors"].append)
    streams.session_started.subscribe(seen["session_started"].append)
    options = build_options("rt_seams_key", transport="livekit", stats_interval_s=None,
                            reconnect=rt.ReconnectPolicy(max_attempts=0))  # fmt: skip
    shell = SessionShell(CoreConfig(connect_timeout_s=5.0, reconnect_delays=()), streams,
                         options, url="ws://127.0.0.1:9/v1/stream", describe="the test",
                         loopback=True, redact=lambda text: text,
                         make_signaling=lambda: RoomInfoSignaling(answer))  # fmt: skip
    return shell, seen


async def test_a_room_info_the_transport_refuses_is_one_protocol_error_and_no_session() -> None:
    shell, seen = livekit_shell(BAD_ROOM)
    with pytest.raises(rt.ProtocolError, match="unusable livekit_url") as refused:
        await shell.connect(None, None, None)
    await asyncio.shield(shell.disconnect())
    assert seen["errors"] == [refused.value]  # refused once, by the transport
    assert seen["session_started"] == [] and shell.info is None  # no room, no token


async def test_a_refused_room_info_after_the_room_is_joined_is_a_problem_only() -> None:
    pytest.importorskip("livekit.rtc")
    from rxrealtime.transports.livekit import LivekitTransport

    problems: list[rt.RealtimeError] = []
    identified: list[p.ServerMessage] = []

    async def send(message: p.ClientMessage) -> None:
        return None

    context = MediaContext(send=send, lost=problems.append, problem=problems.append,
                           track_received=print, frame_received=print,
                           identified=identified.append)  # fmt: skip
    transport = LivekitTransport(context)
    good = p.LivekitRoomInfo(livekit_url="ws://127.0.0.1:7880", token="tok", room_name="r")
    transport.on_frame(good)  # before start(): kept for it, and handed on
    transport.on_frame(BAD_ROOM)
    assert identified == [good] and transport.room_info == good
    (problem,) = problems
    assert isinstance(problem, rt.ProtocolError) and "unusable livekit_url" in str(problem)
    await transport.close()
