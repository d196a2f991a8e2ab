"""A hostile client's offers over a real socket: refused as ``invalid offer``, counted as
protocol errors (not server failures), and the socket stays usable for a good offer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection

import rxrealtime as rt
from rxrealtime.transports.ice import gather_on_loopback


async def next_frame(ws: aiohttp.ClientWebSocketResponse[bool], *types: str) -> dict[str, Any]:
    while True:
        msg = await asyncio.wait_for(ws.receive(), 10)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        frame: dict[str, Any] = json.loads(msg.data)
        if frame["type"] in types:
            return frame


async def test_unanswerable_offer_is_refused_and_a_good_one_still_answered() -> None:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="sendrecv")
    async with rt.serve_embedded(tick_interval_s=0.2) as server, aiohttp.ClientSession() as http:
        url = f"{server.url}/v1/stream?api_key={server.api_key}&model=lucy-2.6"
        ws = await http.ws_connect(url)
        try:
            with gather_on_loopback():
                await pc.setLocalDescription(await pc.createOffer())
            good = pc.localDescription.sdp
            # aiortc applies an m-line without a direction but cannot answer it
            bad = "\r\n".join(line for line in good.split("\r\n") if line != "a=sendrecv")
            await ws.send_str(json.dumps({"type": "offer", "sdp": bad}))
            error = await next_frame(ws, "error", "answer")
            assert error["type"] == "error" and error["error"].startswith("invalid offer: ")
            assert server.counters.get("protocol_errors") == 1
            assert "handler_errors" not in server.counters

            await ws.send_str(json.dumps({"type": "offer", "sdp": good}))
            answer = await next_frame(ws, "answer", "error")
            assert answer["type"] == "answer" and answer["sdp"].startswith("v=0")
            (session_id,) = server.sessions
            assert (await next_frame(ws, "session_id"))["session_id"] == session_id
        finally:
            await ws.close()
            await pc.close()
    assert "handler_errors" not in server.counters
