"""The embedded server in LiveKit mode, driven by LiveKit's own SDK as a bare client.

A real livekit-server runs on loopback for the module (``make livekit`` builds it; without
it these tests skip, and fail under ``CI=true``). The client here is only a socket plus
``livekit.rtc`` (as in tools/livekit/smoke.py), so what is tested is the server's side of
the wire: ``livekit_join`` -> room info, the generated video in the room, acks, ticks,
billing, watch-stream credentials and the fault switches.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from conftest import wait_until
from conftest_livekit import require_livekit

import rxrealtime as rt
from rxrealtime import protocol as p
from rxrealtime.server.livekit_server import BINARY_ENV, LiveKitServer, find_livekit_binary
from rxrealtime.server.video import prompt_tint

pytestmark = pytest.mark.timeout(60)

W, H, FPS = 320, 180, 15
GENERATED = "inference-server-"


@pytest.fixture(scope="module")
def livekit() -> Iterator[LiveKitServer]:
    binary = require_livekit()
    with LiveKitServer(binary, api_secret=secrets.token_urlsafe(32)) as lk:
        yield lk


@pytest.fixture
async def lk_server(livekit: LiveKitServer) -> AsyncIterator[rt.EmbeddedServer]:
    async with rt.serve_embedded(
        media="livekit",
        tick_interval_s=0.2,
        livekit_url=livekit.url,
        livekit_key=livekit.api_key,
        livekit_secret=livekit.api_secret,
    ) as srv:
        yield srv


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def band_colour(rgba: np.ndarray) -> np.ndarray:
    """Mean colour of the generated band on top (inside it, away from codec bleed)."""
    band = max(2, rgba.shape[0] // 6)
    return np.asarray(rgba[2 : band - 3, 8:-8, :3].reshape(-1, 3).mean(axis=0))


def near(colour: np.ndarray, tint: tuple[int, int, int], tolerance: float = 24) -> bool:
    return bool(np.all(np.abs(colour - np.asarray(tint)) < tolerance))


class BareClient:
    """A raw socket plus a ``livekit.rtc.Room``: what a LiveKit-mode client does, no more."""

    def __init__(self, url: str, api_key: str) -> None:
        self.url = f"{url}/v1/stream?api_key={api_key}&model=lucy-2.5&livekit_early_room_info=true"
        self.messages: list[p.ServerMessage] = []
        self.frames = 0
        self.colour: np.ndarray | None = None
        self.room_events: list[str] = []
        self.info: p.LivekitRoomInfo | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._streams: list[Any] = []
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.room: Any = None
        self.source: Any = None

    async def connect_socket(self) -> None:
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(self.url)
        self._tasks.append(asyncio.ensure_future(self._read()))

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                self.messages.append(p.decode(msg.data))

    async def send(self, frame: str) -> None:
        assert self._ws is not None
        await self._ws.send_str(frame)

    def of(self, kind: type[Any]) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind)]

    async def next(self, kind: type[Any], after: int = 0, timeout: float = 10) -> Any:
        await wait_until(lambda: len(self.of(kind)) > after, timeout)
        return self.of(kind)[after]

    async def join(self, publish: bool = True) -> p.LivekitRoomInfo:
        """Socket, ``livekit_join``, room info, then the room (and the camera if asked)."""
        await self.connect_socket()
        await self.send('{"type":"livekit_join"}')
        self.info = info = await self.next(p.LivekitRoomInfo)
        await self.join_room(info.livekit_url, info.token, publish)
        return info

    async def join_room(self, url: str, token: str, publish: bool) -> None:
        from livekit import rtc

        self.room = room = rtc.Room()
        room.on("track_subscribed", self._on_track)
        room.on("disconnected", lambda reason: self.room_events.append(f"disconnected {reason}"))
        await room.connect(url, token)
        if publish:
            self.source = rtc.VideoSource(W, H)
            track = rtc.LocalVideoTrack.create_video_track("camera", self.source)
            options = rtc.TrackPublishOptions(
                source=rtc.TrackSource.SOURCE_CAMERA, video_codec=rtc.VideoCodec.H264
            )
            await room.local_participant.publish_track(track, options)
            self._tasks.append(asyncio.ensure_future(self._feed()))

    async def _feed(self) -> None:
        from livekit import rtc

        pattern = rt.media.SyntheticTrack(W, H, FPS)
        rgba = np.full((H, W, 4), 255, dtype=np.uint8)
        for index in range(10**6):
            rgba[..., :3] = pattern.pattern(index)
            self.source.capture_frame(
                rtc.VideoFrame(W, H, rtc.VideoBufferType.RGBA, rgba.tobytes())
            )
            await asyncio.sleep(1 / FPS)

    def _on_track(self, track: Any, publication: Any, participant: Any) -> None:
        from livekit import rtc

        if track.kind == rtc.TrackKind.KIND_VIDEO and participant.identity.startswith(GENERATED):
            self._tasks.append(asyncio.ensure_future(self._watch(track)))

    async def _watch(self, track: Any) -> None:
        from livekit import rtc

        stream = rtc.VideoStream(track, format=rtc.VideoBufferType.RGBA)
        self._streams.append(stream)
        async for event in stream:
            frame = event.frame
            if frame.width >= 16 and frame.height >= 16:
                self.frames += 1
                pixels = np.frombuffer(frame.data, np.uint8, count=frame.width * frame.height * 4)
                self.colour = band_colour(pixels.reshape(frame.height, frame.width, 4))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for stream in self._streams:
            await stream.aclose()
        if self.source is not None:
            await self.source.aclose()
        if self.room is not None:
            await self.room.disconnect()
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()


@pytest.fixture
async def client(lk_server: rt.EmbeddedServer) -> AsyncIterator[BareClient]:
    bare = BareClient(lk_server.url, lk_server.api_key)
    yield bare
    await bare.close()


async def test_join_generates_the_tinted_video_acks_ticks_and_bills_what_it_sent(
    lk_server: rt.EmbeddedServer, client: BareClient, livekit: LiveKitServer
) -> None:
    info = await client.join()
    assert info.livekit_url == livekit.url
    assert info.room_name == f"room-{info.session_id}"
    assert info.session_id in lk_server.sessions
    grant = claims(info.token)
    assert grant["video"]["room"] == info.room_name
    assert grant["video"]["canPublish"] and grant["video"]["canSubscribe"]
    # the generated video: the client's own frames, tinted by the prompt ("" at first)
    await wait_until(lambda: client.frames >= 10 and client.colour is not None, 15)
    await wait_until(lambda: near(client.colour, prompt_tint("")), 5)  # type: ignore[arg-type]
    room = lk_server.sessions[info.session_id].room
    assert room is not None and room.generator.source_kind == "client"

    await client.send('{"type":"prompt","prompt":"anime","enhance_prompt":true}')
    ack = await client.next(p.PromptAck)
    assert (ack.prompt, ack.success) == ("anime", True)
    await wait_until(lambda: near(client.colour, prompt_tint("anime")), 5)  # type: ignore[arg-type]
    await client.send('{"type":"set_image","image_data":null,"prompt":null}')  # the vendor's
    assert (await client.next(p.SetImageAck)).success

    await wait_until(lambda: len(client.of(p.GenerationTick)) >= 3)
    assert client.of(p.GenerationStarted)
    assert not client.of(p.SessionIdMessage)  # legacy, not sent in this mode
    lk_server.faults.fail_acks = True
    await client.send('{"type":"prompt","prompt":"noir"}')
    assert (await client.next(p.PromptAck, after=1)).success is False

    await client.close()
    await wait_until(lambda: info.session_id in lk_server.billed_by_session)
    seconds = [t.seconds for t in client.of(p.GenerationTick)]
    assert seconds == list(range(1, len(seconds) + 1))
    assert lk_server.billed_by_session[info.session_id] == seconds[-1]


async def test_watch_stream_gives_subscribe_only_credentials_that_see_the_video(
    lk_server: rt.EmbeddedServer, client: BareClient
) -> None:
    info = await client.join()
    watch = f"http://127.0.0.1:{lk_server.port}/watch-stream/{info.room_name}"
    viewer = BareClient(lk_server.url, lk_server.api_key)
    async with aiohttp.ClientSession() as http:
        async with http.post(watch, headers={"x-api-key": lk_server.api_key}) as response:
            assert response.status == 200
            body = await response.json()
        async with http.post(watch, headers={"x-api-key": "wrong"}) as response:
            assert (response.status, await response.json()) == (401, {"error": "invalid api key"})
        missing = watch.replace(info.room_name, "room-nope")
        async with http.post(missing, headers={"x-api-key": lk_server.api_key}) as response:
            assert response.status == 404
    assert set(body) == {"livekit_url", "token", "room_name", "session_id"}
    assert (body["room_name"], body["session_id"]) == (info.room_name, info.session_id)
    grant = claims(body["token"])["video"]
    assert grant["room"] == info.room_name and grant["canSubscribe"]
    assert not grant.get("canPublish") and not grant.get("canPublishData")
    try:
        await viewer.join_room(body["livekit_url"], body["token"], publish=False)
        await wait_until(lambda: viewer.frames >= 5, 15)
    finally:
        await viewer.close()


async def test_a_receive_only_client_gets_generated_video_from_the_pattern(
    lk_server: rt.EmbeddedServer, client: BareClient
) -> None:
    info = await client.join(publish=False)
    await wait_until(lambda: client.frames >= 5, 15)
    await wait_until(lambda: len(client.of(p.GenerationTick)) >= 1)
    room = lk_server.sessions[info.session_id].room
    assert room is not None and room.generator.source_kind == "synthetic"


async def test_queue_fault_sends_decreasing_positions_before_the_room_info(
    lk_server: rt.EmbeddedServer, client: BareClient
) -> None:
    lk_server.faults.queue_for_s = 0.6
    await client.connect_socket()
    await client.send('{"type":"livekit_join"}')
    await client.next(p.LivekitRoomInfo)
    kinds = [type(m).__name__ for m in client.messages]
    assert kinds == ["QueuePosition"] * 3 + ["LivekitRoomInfo"]
    assert [(m.position, m.queue_size) for m in client.of(p.QueuePosition)] == [
        (3, 3), (2, 3), (1, 3),
    ]  # fmt: skip


async def test_sessions_that_leave_at_once_leave_no_room_and_no_half_joined_participant(
    lk_server: rt.EmbeddedServer, livekit: LiveKitServer
) -> None:
    """Closing while the server's participant is still joining must wait for that join:
    a cancelled ``Room.connect`` makes LiveKit's native side panic and SIGTERM us."""
    from livekit import api

    generators = []
    for _ in range(3):
        bare = BareClient(lk_server.url, lk_server.api_key)
        try:
            await bare.connect_socket()
            await bare.send('{"type":"livekit_join"}')
            info = await bare.next(p.LivekitRoomInfo)
            room = lk_server.rooms[info.room_name].room
            assert room is not None
            generators.append(room.generator)
        finally:
            await bare.close()
    await wait_until(lambda: not lk_server.sessions and not lk_server.rooms)
    assert {g.connect_outcome for g in generators} == {"connected"}  # never "cancelled"
    service = api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret)
    try:
        rooms = await service.room.list_rooms(api.ListRoomsRequest())
    finally:
        await service.aclose()
    assert [room.name for room in rooms.rooms] == []


async def test_drop_room_fault_removes_the_client_from_its_room(
    lk_server: rt.EmbeddedServer, client: BareClient
) -> None:
    lk_server.faults.drop_room_after_s = 0.3
    await client.join()
    await wait_until(lambda: bool(client.room_events), 15)
    assert lk_server.counters["room_drops"] == 1
    assert "disconnected" in client.room_events[0]
    ticks = len(client.of(p.GenerationTick))
    await wait_until(lambda: len(client.of(p.GenerationTick)) > ticks)  # the socket lives on


async def test_queue_fault_also_holds_an_aiortc_answer() -> None:
    from rxrealtime.transports.ice import create_peer_connection, gather_on_loopback

    faults = rt.Faults(queue_for_s=0.4)
    async with rt.serve_embedded(tick_interval_s=0.2, faults=faults) as srv:
        bare = BareClient(srv.url, srv.api_key)
        pc = create_peer_connection()
        try:
            await bare.connect_socket()
            await bare.send('{"type":"livekit_join"}')  # not in aiortc mode: an error
            assert "--media livekit" in (await bare.next(p.ErrorMessage)).error
            pc.addTransceiver("video", direction="recvonly")
            with gather_on_loopback():
                await pc.setLocalDescription(await pc.createOffer())
            await bare.send(p.encode(p.Offer(sdp=pc.localDescription.sdp)).decode())
            await bare.next(p.Answer)
        finally:
            await pc.close()
            await bare.close()
    kinds = [type(m).__name__ for m in bare.messages]
    assert kinds[:4] == ["ErrorMessage", "QueuePosition", "QueuePosition", "Answer"]
    assert [m.position for m in bare.of(p.QueuePosition)] == [2, 1]


async def test_by_default_a_local_livekit_server_is_started_and_stopped(
    livekit: LiveKitServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with rt.serve_embedded(media="livekit") as srv:
        assert srv.livekit is not None and srv.livekit.process is not None
        process = srv.livekit.process
        assert srv.livekit.url == process.url and process.url.startswith("ws://127.0.0.1:")
        assert process.proc is not None and process.proc.poll() is None
        popen = process.proc
    assert popen.poll() is not None  # stopped with the server
    monkeypatch.setenv(BINARY_ENV, "/nonexistent/livekit-server")
    with pytest.raises(rt.ConfigError, match="make livekit"):
        async with rt.serve_embedded(media="livekit"):
            pass


def test_the_binary_is_found_by_env_then_project_then_path(tmp_path: Path) -> None:
    project, elsewhere, on_path = tmp_path / "proj", tmp_path / "else", tmp_path / "bin"
    built = project / "tools" / "livekit" / "bin" / "livekit-server"
    for binary in (built, on_path / "livekit-server"):
        binary.parent.mkdir(parents=True)
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    (project / "a" / "b").mkdir(parents=True)
    elsewhere.mkdir()
    env = {BINARY_ENV: str(on_path / "livekit-server")}
    assert find_livekit_binary(env, [project / "a" / "b"], "") == on_path / "livekit-server"
    assert find_livekit_binary({BINARY_ENV: "/nope"}, [project], str(on_path)) is None
    assert find_livekit_binary({}, [elsewhere, project / "a" / "b"], str(on_path)) == built
    assert find_livekit_binary({}, [elsewhere], str(on_path)) == on_path / "livekit-server"
    assert find_livekit_binary({}, [elsewhere], "") is None


def test_livekit_settings_are_checked_and_the_secret_never_shown() -> None:
    secret = "lk-secret-" + secrets.token_hex(8)
    with pytest.raises(rt.ConfigError, match="livekit_url needs livekit_key") as caught:
        rt.EmbeddedServer(media="livekit", livekit_url="ws://127.0.0.1:1", livekit_secret=secret)
    assert secret not in str(caught.value)
    with pytest.raises(rt.ConfigError, match="need livekit_url"):
        rt.EmbeddedServer(livekit_key="k", livekit_secret=secret)
    server = rt.EmbeddedServer(
        media="livekit", livekit_url="ws://127.0.0.1:1", livekit_key="k", livekit_secret=secret
    )
    assert secret not in repr(server.settings) and secret not in str(server.settings)


def test_aiortc_mode_never_imports_livekit() -> None:
    code = (
        "import asyncio, sys, rxrealtime as rt\n"
        "async def main():\n"
        "    async with rt.serve_embedded():\n"
        "        pass\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m.startswith('livekit')))\n"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


async def test_cli_serve_media_livekit_runs_and_stops_its_livekit_server(
    livekit: LiveKitServer,
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rxrealtime.cli", "serve", "--media", "livekit", "--port", "0",
        "--api-key", "k-cli-123", "--tick-interval", "0.2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = line.split("listening on ")[1].split()[0]
        pid = int(line.split("livekit-server pid ")[1].split(")")[0])
        bare = BareClient(url, "k-cli-123")
        try:
            await bare.connect_socket()
            await bare.send('{"type":"livekit_join"}')
            info = await bare.next(p.LivekitRoomInfo)
            assert info.livekit_url.startswith("ws://127.0.0.1:") and info.token
        finally:
            await bare.close()
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
