"""The client against servers that misbehave on purpose.

A small aiohttp server on a free loopback port plays each hostile part (echoing the key,
killing every link, oversized frames, billing nonsense). Sessions use the signaling-only
transport (``transport="none"``): these are signaling attacks, and a hostile server
need not speak WebRTC.
"""

from __future__ import annotations

import asyncio
import inspect
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import aiohttp
import pytest
from aiohttp import web
from conftest import Recorder, wait_until

import rxrealtime as rt
from rxrealtime import operators as rto

KEY = "sk-live-HostileEcho-7f3e9a1b"
Behaviour = Callable[[web.WebSocketResponse, int], Awaitable[None]]


class HostileServer:
    """Runs ``behaviour(ws, n)`` for the n-th connection (1-based), then closes."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.connections = 0
        self.received: list[str] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.connections += 1
        await self.behaviour(ws, self.connections)
        if not ws.closed:
            await ws.close()
        return ws


@pytest.fixture
async def hostile() -> AsyncIterator[Callable[[Behaviour], Awaitable[HostileServer]]]:
    runners: list[web.AppRunner] = []

    async def start(behaviour: Behaviour) -> HostileServer:
        server = HostileServer(behaviour)
        app = web.Application()
        app.router.add_get("/v1/stream", server.handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        server.url = f"ws://127.0.0.1:{runner.addresses[0][1]}"
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


def session_for(server: HostileServer, **options: object) -> rt.Session:
    options.setdefault("reconnect", rt.ReconnectPolicy(initial_delay_s=0.02, max_delay_s=0.05))
    return rt.Session(server.url, api_key=KEY, transport="none", **options)  # type: ignore[arg-type]


async def read_until_closed(ws: web.WebSocketResponse) -> list[str]:
    return [msg.data async for msg in ws if isinstance(msg.data, str)]


# -- the key never shows, whatever the server echoes ---------------------------------


async def test_an_echoed_key_never_reaches_an_error_a_rejection_or_a_traceback(hostile) -> None:
    async def echo_everything(ws: web.WebSocketResponse, n: int) -> None:
        for frame in (
            f'{{"type": "generation_tick", "seconds": "{KEY}"',  # malformed JSON
            f'{{"type": "teleport", "to": "{KEY}"}}',  # unknown type
            f'{{"type": "error", "error": {{"detail": "{KEY.upper()}"}}}}',  # wrong type
            f'{{"type": "error", "error": "quota for {KEY.lower()} exceeded"}}',
        ):
            await ws.send_str(frame)
        async for msg in ws:  # answer the prompt with the key, in another letter case
            if '"prompt"' in msg.data:
                reason = f"prompt refused for key {KEY.swapcase()}"
                await ws.send_str(
                    f'{{"type": "prompt_ack", "prompt": "hi", "success": false, '
                    f'"error": "{reason}"}}'
                )

    server = await hostile(echo_everything)
    session = session_for(server)
    rec = Recorder(session)
    await session.connect()
    with pytest.raises(rt.RequestRejected) as rejected:
        await session.set_prompt("hi")
    await wait_until(lambda: len(rec["errors"]) >= 5)
    await session.disconnect()
    shown = [str(rejected.value), repr(rejected.value)]
    shown += ["".join(traceback.format_exception(rejected.value))]
    for error in rec["errors"]:
        shown += [str(error), repr(error), "".join(traceback.format_exception(error))]
    types = [type(e) for e in rec["errors"]]
    assert types.count(rt.ProtocolError) >= 3 and rt.RequestRejected in types
    assert any(isinstance(e, rt.ServerError) and "quota for ***" in str(e) for e in rec["errors"])
    for text in shown:
        assert KEY.lower() not in text.lower()


def test_registered_secrets_are_redacted_in_any_case_and_url_encoding() -> None:
    from rxrealtime.exceptions import redact_secrets, register_secret

    register_secret("Turn/Secret+42")
    text = "creds turn/secret+42 and Turn%2FSecret%2B42 and TURN/SECRET+42"
    assert redact_secrets(text) == "creds *** and *** and ***"
    assert str(rt.ConnectionLost("peer said TURN/secret+42")) == "peer said ***"


# -- a server that accepts and then kills every link -----------------------------------


async def test_a_server_that_kills_every_link_exhausts_the_reconnect_budget(hostile) -> None:
    async def kill_after_a_moment(ws: web.WebSocketResponse, n: int) -> None:
        await asyncio.sleep(0.05)
        await ws.close(code=1011, message=b"internal error")

    server = await hostile(kill_after_a_moment)
    policy = rt.ReconnectPolicy(max_attempts=1, initial_delay_s=0.01, budget=3)
    session = session_for(server, reconnect=policy)
    rec = Recorder(session)
    await session.connect()
    await wait_until(lambda: session.closed, timeout=10)
    assert server.connections == 4  # the first link and three reconnects, not one more
    assert "gave up reconnecting" in str(rec["errors"][-1])
    assert all("code 1011: internal server error" in str(e) for e in rec["errors"][:-1])
    assert rec["connection_changes"][-1] is rt.ConnectionState.DISCONNECTED


@pytest.mark.parametrize(
    ("code", "says"),
    [(4001, "application code 4001"), (1000, "code 1000, normal closure")],
)
async def test_an_application_or_normal_close_is_not_reconnected(hostile, code, says) -> None:
    async def close_with(ws: web.WebSocketResponse, n: int) -> None:
        await asyncio.sleep(0.05)
        await ws.close(code=code)

    server = await hostile(close_with)
    session = session_for(server)
    rec = Recorder(session)
    await session.connect()
    await wait_until(lambda: session.closed)
    await asyncio.sleep(0.2)  # room for a (wrong) reconnect
    assert server.connections == 1
    (error,) = rec["errors"]
    assert isinstance(error, rt.ConnectionLost) and error.permanent and error.code == code
    assert says in str(error)


# -- frames above the hard limit ---------------------------------------------------------


async def test_a_frame_above_the_hard_limit_says_what_happened(hostile) -> None:
    async def send_a_huge_frame(ws: web.WebSocketResponse, n: int) -> None:
        if n == 1:
            await asyncio.sleep(0.05)
            await ws.send_str('{"type": "error", "error": "' + "x" * 20_000 + '"}')
        await read_until_closed(ws)

    server = await hostile(send_a_huge_frame)
    session = session_for(server, max_frame_bytes=1024)
    rec = Recorder(session)
    await session.connect()
    await wait_until(lambda: len(rec["errors"]) >= 2)
    protocol_error, lost = rec["errors"][:2]
    assert isinstance(protocol_error, rt.ProtocolError)
    assert "hard limit of 8192 bytes" in str(protocol_error) and "1009" in str(protocol_error)
    assert isinstance(lost, rt.ConnectionLost) and "message too big" in str(lost)
    await wait_until(lambda: session.state is rt.ConnectionState.CONNECTED)  # reconnected
    await session.disconnect()


@pytest.mark.skipif(
    not hasattr(web.WebSocketResponse, "send_frame")
    or "decode_text" not in inspect.signature(aiohttp.ClientSession.ws_connect).parameters,
    reason="needs aiohttp 3.13+ (text frames as bytes, send_frame)",
)
async def test_a_text_frame_that_is_not_utf8_is_an_error_and_the_link_goes_on(hostile) -> None:
    async def mangled_text(ws: web.WebSocketResponse, n: int) -> None:
        await ws.send_str('{"type": "generation_tick", "seconds": 1}')
        await ws.send_frame(b'{"type": "error", "error": "\xff\xfe"}', aiohttp.WSMsgType.TEXT)
        await ws.send_str('{"type": "generation_tick", "seconds": 2}')
        await read_until_closed(ws)

    server = await hostile(mangled_text)
    session = session_for(server)
    rec = Recorder(session)
    await session.connect()
    await wait_until(lambda: len(rec["generation_ticks"]) == 2)
    await session.disconnect()
    (error,) = rec["errors"]
    assert isinstance(error, rt.ProtocolError) and "utf-8" in str(error).lower()
    assert server.connections == 1  # the same link: nothing was lost


# -- billing nonsense ----------------------------------------------------------------------


async def test_lone_subscribers_that_raise_are_reported_and_keep_their_frames(hostile) -> None:
    # One subscriber: the read loop calls it directly (no emit loop), so the loop itself
    # must isolate its failure, report it, and deliver the next ticks.
    async def ticks(ws: web.WebSocketResponse, n: int) -> None:
        for seconds in range(1, 7):
            await ws.send_str(f'{{"type": "generation_tick", "seconds": {seconds}}}')
        await read_until_closed(ws)

    server = await hostile(ticks)
    session = session_for(server)
    seen: list[int] = []
    reported: list[rt.RealtimeError] = []
    session.errors.subscribe(reported.append)

    def fussy(tick: rt.protocol.GenerationTick) -> None:
        seen.append(tick.seconds)
        if tick.seconds % 2:
            raise ValueError(f"odd tick {tick.seconds}")

    def tap(frame: rt.protocol.ServerMessage) -> None:  # the lone `messages` subscriber
        raise RuntimeError(f"tap {type(frame).__name__}")

    session.generation_ticks.subscribe(fussy)
    session.messages.subscribe(tap)
    await session.connect()
    await wait_until(lambda: seen[-1:] == [6])
    await session.disconnect()
    assert seen == [1, 2, 3, 4, 5, 6]
    failures = [e for e in reported if isinstance(e, rt.SubscriberError)]
    ticks = [f for f in failures if f.stream == "generation_ticks"]
    assert [str(f.error) for f in ticks] == ["odd tick 1", "odd tick 3", "odd tick 5"]
    taps = [f for f in failures if f.stream == "messages"]
    assert [str(f.error) for f in taps] == ["tap GenerationTick"] * 6


async def test_ticks_that_jump_or_overflow_are_errors_and_never_billed(hostile) -> None:
    async def bill_nonsense(ws: web.WebSocketResponse, n: int) -> None:
        for seconds in ("1", "2", "1000002", "3", str(2**64), "4", "-5", "5"):
            await ws.send_str(f'{{"type": "generation_tick", "seconds": {seconds}}}')
            await asyncio.sleep(0.01)
        await read_until_closed(ws)

    server = await hostile(bill_nonsense)
    session = session_for(server)
    rec = Recorder(session)
    billed: list[int] = []
    money: list[Decimal] = []
    totals = session.generation_ticks.pipe(rto.billed_seconds(resets=session.session_started))
    totals.subscribe(billed.append)
    totals.pipe(rto.cost("0.01")).subscribe(money.append)
    await session.connect()
    await wait_until(lambda: billed[-1:] == [5])
    await session.disconnect()
    assert [t.seconds for t in rec["generation_ticks"]] == [1, 2, 3, 4, 5]
    assert money[-1] == Decimal("0.05")
    errors = [str(e) for e in rec["errors"]]
    assert len(errors) == 3 and all(isinstance(e, rt.ProtocolError) for e in rec["errors"])
    assert "jumps from 2 to 1000002" in errors[0]
    assert "<= 10000000" in errors[1] and ">= 0" in errors[2]
