"""Property: any frames a client sends over a real WebSocket never crash the server and
never disturb another session. The server, a victim session and an attacking socket
live on a loop in a background thread; hypothesis drives the attacker from this one."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rxrealtime as rt

T = TypeVar("T")


class Arena:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.ticks: list[int] = []
        self.errors: list[rt.RealtimeError] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def start(self) -> None:
        self.server_cm = rt.serve_embedded(tick_interval_s=0.05)
        self.server = await self.server_cm.__aenter__()
        self.victim = rt.Session(self.server.url, api_key=self.server.api_key)
        self.victim.generation_ticks.subscribe(lambda t: self.ticks.append(t.seconds))
        self.victim.errors.subscribe(self.errors.append)
        await self.victim.connect(local_track=rt.media.SyntheticTrack(64, 48, fps=5))
        await self.victim.generation_ticks.next(timeout=10)
        self.http = aiohttp.ClientSession()
        await self.open_attacker()

    async def open_attacker(self) -> None:
        url = f"{self.server.url}/v1/stream?api_key={self.server.api_key}&model=lucy-2.6"
        self.attacker = await self.http.ws_connect(url)

    async def attack(self, frames: list[str | bytes]) -> None:
        if self.attacker.closed:
            await self.open_attacker()
        for frame in frames:
            if isinstance(frame, bytes):
                await self.attacker.send_bytes(frame)
            else:
                await self.attacker.send_str(frame)
        # a prompt round trip proves the server still serves this very socket
        await self.attacker.send_str('{"type": "prompt", "prompt": "still there?"}')
        while True:  # asyncio.timeout needs 3.11; we support 3.10
            msg = await asyncio.wait_for(self.attacker.receive(), 10)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"attacker socket closed by the server: {msg.type}")
            if '"still there?"' in msg.data:
                return

    async def stop(self) -> None:
        await self.attacker.close()
        await self.http.close()
        await self.victim.disconnect()
        await self.server_cm.__aexit__(None, None, None)


@pytest.fixture(scope="module")
def arena() -> Iterator[Arena]:
    arena = Arena()
    arena.run(arena.start())
    yield arena
    arena.run(arena.stop())
    arena.loop.call_soon_threadsafe(arena.loop.stop)
    arena.thread.join(5)
    arena.loop.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=8,
)
client_like = st.builds(
    lambda tag, fields: json.dumps({"type": tag, **fields}),
    st.sampled_from(["offer", "ice-candidate", "prompt", "set_image", "answer", "bogus", ""]),
    st.dictionaries(
        st.sampled_from(["sdp", "candidate", "prompt", "enhance_prompt", "image_data"]),
        json_values | st.just({"candidate": "candidate:1 1 UDP 1 127.0.0.1 9 typ host"}),
        max_size=3,
    ),
)
frames = st.lists(
    st.one_of(
        st.text(max_size=200), st.binary(max_size=200), client_like, json_values.map(json.dumps)
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=frames)
def test_random_frames_never_crash_the_server_nor_disturb_others(arena: Arena, batch) -> None:
    ticks_before = len(arena.ticks)
    arena.run(arena.attack(batch))

    async def next_victim_tick() -> None:  # interval 0.05 s; a loaded machine may lag
        for _ in range(100):
            if len(arena.ticks) > ticks_before:
                return
            await asyncio.sleep(0.02)

    arena.run(next_victim_tick())
    assert len(arena.ticks) > ticks_before
    assert arena.ticks == list(range(1, len(arena.ticks) + 1))
    assert arena.errors == []
    assert arena.victim.state is rt.ConnectionState.GENERATING
    assert arena.server.counters.get("handler_errors", 0) == 0
