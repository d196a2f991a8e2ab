"""Run the vendor's own client (decart[realtime]==0.2.4) against a fake LiveKit-mode server.

Everything is on 127.0.0.1: a real livekit-server (server.LiveKitServer) plus a ~100-line fake
control plane in aiohttp that speaks the LiveKit-mode protocol exactly as the vendor client
expects it (see VENDOR_NOTES.md), and an `inference-server-fake` participant that echoes the
client's camera back with inverted colours. It exercises, with the vendor code unmodified:

  RealtimeClient.connect  -> WS /v1/stream?api_key&model&livekit_early_room_info=true&user_agent
                              livekit_join -> queue_position -> livekit_room_info
                              room join + camera publish, set_image passthrough -> set_image_ack
  on_remote_stream        -> the inference participant's video track, frames counted
  on("generation_tick")   -> ticks the fake sends every second after generation_started
  set_prompt              -> prompt -> prompt_ack
  RealtimeClient.subscribe-> POST /watch-stream/{room} (x-api-key) -> view-only room join

Needs: a venv with `decart[realtime]==0.2.4 livekit-api` and tools/livekit/bin/livekit-server.

    /tmp/decartvenv/bin/python tools/livekit/vendor_e2e.py

The client half is tools/livekit/vendor_client.py, which tests/test_vendor_client.py runs
against the embedded server's LiveKit mode (`rxrealtime serve --media livekit`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from pathlib import Path

import numpy as np
from aiohttp import WSMsgType, web
from livekit import api, rtc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server import LiveKitServer, free_port
from vendor_client import run_vendor_client

API_KEY = "test-key"
W, H, FPS = 640, 360, 30
log = logging.getLogger("vendor_e2e")


# --------------------------------------------------------------------------------------------
# Fake control plane (what our server's LiveKit mode has to do, minimally)
# --------------------------------------------------------------------------------------------
class FakeControlPlane:
    def __init__(self, lk: LiveKitServer) -> None:
        self.lk = lk
        self.port = free_port()
        self.seen: list[dict] = []  # everything the vendor client sent / asked
        self.inference: list[asyncio.Task] = []
        self.runner: web.AppRunner | None = None
        self.tiny_frames = 0

    def token(self, identity: str, room: str, publish: bool = True) -> str:
        return (
            api.AccessToken(self.lk.api_key, self.lk.api_secret)
            .with_identity(identity)
            .with_grants(
                api.VideoGrants(
                    room_join=True,
                    room=room,
                    can_publish=publish,
                    can_publish_data=publish,
                    can_subscribe=True,
                )
            )
            .to_jwt()
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/stream", self.stream)
        app.router.add_post("/watch-stream/{room}", self.watch)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        for t in self.inference:
            t.cancel()
        await asyncio.gather(*self.inference, return_exceptions=True)
        if self.runner:
            await self.runner.cleanup()

    async def watch(self, request: web.Request) -> web.Response:
        room = request.match_info["room"]
        self.seen.append(
            {"http": f"POST {request.path}", "x-api-key": request.headers.get("x-api-key")}
        )
        if request.headers.get("x-api-key") != API_KEY:
            return web.json_response({"error": "invalid api key"}, status=401)
        return web.json_response(
            {
                "livekit_url": self.lk.url,
                "room_name": room,
                "token": self.token(f"viewer-{uuid.uuid4().hex[:6]}", room, publish=False),
                "session_id": room,
            }
        )

    async def stream(self, request: web.Request) -> web.WebSocketResponse:
        self.seen.append({"ws_query": dict(request.query)})
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if request.query.get("api_key") != API_KEY:
            await ws.send_json({"type": "error", "error": "invalid api key"})
            await ws.close()
            return ws
        session_id = uuid.uuid4().hex[:12]
        room = f"room-{session_id}"
        ticker: asyncio.Task | None = None
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            self.seen.append({"ws_recv": data})
            kind = data.get("type")
            if kind == "livekit_join":
                # the inference participant joins first so the client finds its track
                self.inference.append(asyncio.create_task(self.inference_participant(room)))
                await ws.send_json({"type": "queue_position", "position": 1, "queue_size": 1})
                await ws.send_json(
                    {
                        "type": "livekit_room_info",
                        "livekit_url": self.lk.url,
                        "token": self.token(f"client-{session_id}", room),
                        "room_name": room,
                        "session_id": session_id,
                    }
                )
            elif kind == "set_image":
                await ws.send_json({"type": "set_image_ack", "success": True})
                if ticker is None:
                    await ws.send_json({"type": "generation_started"})
                    ticker = asyncio.create_task(self.ticks(ws))
            elif kind == "prompt":
                await ws.send_json(
                    {"type": "prompt_ack", "prompt": data["prompt"], "success": True}
                )
        if ticker:
            ticker.cancel()
        return ws

    async def ticks(self, ws: web.WebSocketResponse) -> None:
        n = 0
        while not ws.closed:
            await asyncio.sleep(1)
            n += 1
            await ws.send_json({"type": "generation_tick", "seconds": n})

    async def inference_participant(self, room_name: str) -> None:
        """Echo the client's camera back, colours inverted, as `inference-server-fake`."""
        room = rtc.Room()
        source = rtc.VideoSource(W, H)
        streams: list[asyncio.Task] = []

        async def echo(track: rtc.Track) -> None:
            async for ev in rtc.VideoStream(track, format=rtc.VideoBufferType.RGBA):
                f = ev.frame
                if f.width < 16 or f.height < 16:
                    # When an H264 publisher leaves, its VideoStream yields a few 2x2 frames
                    # (8x8 for VP8).
                    # capture_frame() of a 2x2 frame into a published VideoSource hits a
                    # libwebrtc RTC_CHECK (width > 0) and aborts the whole process.
                    self.tiny_frames += 1
                    continue
                arr = np.frombuffer(f.data, dtype=np.uint8).reshape(f.height, f.width, 4).copy()
                arr[..., :3] = 255 - arr[..., :3]
                source.capture_frame(
                    rtc.VideoFrame(f.width, f.height, rtc.VideoBufferType.RGBA, arr.tobytes())
                )

        @room.on("track_subscribed")
        def _sub(track, pub, participant):
            if track.kind == rtc.TrackKind.KIND_VIDEO and participant.identity.startswith(
                "client-"
            ):
                streams.append(asyncio.create_task(echo(track)))

        try:
            await room.connect(self.lk.url, self.token("inference-server-fake", room_name))
            track = rtc.LocalVideoTrack.create_video_track("output", source)
            await room.local_participant.publish_track(
                track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)
            )
            await asyncio.Event().wait()
        finally:
            for t in streams:
                t.cancel()
            await room.disconnect()
            await source.aclose()


async def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    with LiveKitServer() as lk:
        fake = FakeControlPlane(lk)
        await fake.start()
        try:
            stats = await run_vendor_client(f"ws://127.0.0.1:{fake.port}", API_KEY)
        finally:
            await fake.stop()
    # run_vendor_client returned: connected, generated frames, prompt acked, viewer frames
    ok = stats.get("frames", 0) > FPS and len(stats["ticks"]) >= 2
    print(
        json.dumps(
            {"vendor_client": stats, "server_saw": fake.seen, "ok": ok}, indent=1, default=str
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
