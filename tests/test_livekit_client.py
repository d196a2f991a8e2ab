"""Our client's LiveKit transport when the room info is bad, forged or leads nowhere.

A small control plane (aiohttp) answers ``livekit_join`` with crafted room info; a real
livekit-server on loopback (``make livekit``) is the room server. Each failure is a
clear typed error on ``errors`` and at ``connect``, retried per the policy where it is
transient, and leaves nothing running; no token or LiveKit secret shows anywhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from aiohttp import web
from conftest import Recorder
from conftest_livekit import require_livekit

import rxrealtime as rt
from rxrealtime import protocol as p
from rxrealtime.server.livekit_server import LiveKitServer, free_port

KEY = "sk-live-LiveKitClient-0a1b2c3d"
SECRET = "lk-secret-0123456789abcdef0123456789abcdef"
NO_RETRY = rt.ReconnectPolicy(max_attempts=0)

RoomInfoFor = Callable[[int], Awaitable[p.LivekitRoomInfo]]


@pytest.fixture(autouse=True, scope="module")
def _livekit_sdk() -> None:
    """Every test here needs LiveKit's SDK (the extra); skip, or fail under CI, without."""
    require_livekit()


@pytest.fixture(scope="module")
def livekit() -> Iterator[LiveKitServer]:
    binary = require_livekit()
    with LiveKitServer(binary, api_secret=SECRET) as server:
        yield server


def token_for(server: LiveKitServer, room: str, identity: str, secret: str | None = None) -> str:
    from livekit import api

    grants = api.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True)
    jwt = api.AccessToken(server.api_key, secret or server.api_secret)
    return str(jwt.with_identity(identity).with_grants(grants).to_jwt())


@pytest.fixture
async def control_plane() -> AsyncIterator[Callable[[RoomInfoFor], Awaitable[str]]]:
    """Start a control plane whose ``livekit_join`` answer comes from ``room_info_for(n)``."""
    runners: list[web.AppRunner] = []

    async def start(room_info_for: RoomInfoFor) -> str:
        connections = 0

        async def handle(request: web.Request) -> web.WebSocketResponse:
            nonlocal connections
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            connections += 1
            async for msg in ws:
                if '"livekit_join"' in msg.data:
                    info = await room_info_for(connections)
                    await ws.send_str(p.encode(info).decode())
            return ws

        app = web.Application()
        app.router.add_get("/v1/stream", handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"ws://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def connect_fails(url: str, **options: object) -> tuple[rt.RealtimeError, Recorder]:
    options.setdefault("reconnect", NO_RETRY)
    options.setdefault("connect_timeout_s", 8.0)
    session = rt.Session(url, api_key=KEY, transport="livekit", **options)  # type: ignore[arg-type]
    rec = Recorder(session)
    tasks_before = asyncio.all_tasks()
    with pytest.raises(rt.RealtimeError) as failure:
        await session.connect(local_track=rt.media.SyntheticTrack(64, 48, fps=10))
    await session.disconnect()
    await asyncio.sleep(0.1)
    left = asyncio.all_tasks() - tasks_before - {asyncio.current_task()}
    assert not [t for t in left if not t.done()], "tasks left running"
    return failure.value, rec


def shown(error: BaseException, rec: Recorder, caplog: pytest.LogCaptureFixture) -> str:
    return " ".join([str(error), repr(error), caplog.text, *map(str, rec["errors"])])


async def test_a_room_info_with_a_bad_url_is_a_protocol_error(control_plane) -> None:
    async def bad_url(n: int) -> p.LivekitRoomInfo:
        return p.LivekitRoomInfo(livekit_url="ftp:/nowhere", token="tok", room_name="r")

    error, rec = await connect_fails(await control_plane(bad_url))
    assert isinstance(error, rt.ProtocolError) and "unusable livekit_url" in str(error)
    assert rec["errors"] == [error]


async def test_a_forged_token_is_refused_and_never_shown(
    control_plane, livekit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    forged = token_for(livekit, "room-forged", "client", secret="not-the-secret-" + "x" * 32)

    async def forged_info(n: int) -> p.LivekitRoomInfo:
        return p.LivekitRoomInfo(livekit_url=livekit.url, token=forged, room_name="room-forged",
                                 session_id="s")  # fmt: skip

    url = await control_plane(forged_info)
    once_more = rt.ReconnectPolicy(max_attempts=1, initial_delay_s=0.05)
    error, rec = await connect_fails(url, reconnect=once_more)
    assert isinstance(error, rt.ConnectionLost) and "cannot join LiveKit room" in str(error)
    assert len(rec["errors"]) == 2  # transient: tried again once, per the policy
    text = shown(error, rec, caplog)
    assert forged not in text and forged[-20:] not in text
    assert SECRET not in text and KEY not in text


async def test_a_livekit_server_that_is_down_is_a_connection_error(control_plane) -> None:
    dead = f"ws://127.0.0.1:{free_port()}"

    async def down(n: int) -> p.LivekitRoomInfo:
        return p.LivekitRoomInfo(livekit_url=dead, token="tok", room_name="r", session_id="s")

    error, _ = await connect_fails(await control_plane(down))
    assert isinstance(error, rt.ConnectionLost) and dead in str(error)


async def test_a_room_that_never_publishes_video_says_so(control_plane, livekit) -> None:
    async def empty_room(n: int) -> p.LivekitRoomInfo:
        token = token_for(livekit, "room-empty", f"client-{n}")
        return p.LivekitRoomInfo(livekit_url=livekit.url, token=token, room_name="room-empty",
                                 session_id="s")  # fmt: skip

    error, rec = await connect_fails(await control_plane(empty_room), connect_timeout_s=3.0)
    assert isinstance(error, rt.ConnectionLost)
    assert "no inference-server-* participant published video within 1.5 s" in str(error)
    started = rec["session_started"]
    assert [s.sid for s in started] == ["s"]  # the identity was known before the failure
