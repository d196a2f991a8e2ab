"""LiveKit Python SDK smoke test against a local livekit-server on 127.0.0.1.

Needs `pip install livekit livekit-api numpy` (and optionally `av`) in a throwaway venv, plus
the server binary from tools/livekit/build.sh. Run:

    /tmp/lkvenv/bin/python tools/livekit/smoke.py [--codec h264|vp9|vp8] [--seconds 5]
        [--width 640 --height 360 --fps 30]

What it does (all on loopback, server started by server.LiveKitServer on free ports):
  1. mints two tokens with livekit.api.AccessToken and creates the room with LiveKitAPI;
  2. participant A ("inference-server-smoke") publishes a camera track from rtc.VideoSource fed
     with synthetic RGBA frames (top half red, bottom half blue, a moving white bar);
  3. participant B subscribes and counts frames from rtc.VideoStream(track) for --seconds,
     checks their size and colours, converts one to numpy and to av.VideoFrame and back;
  4. kills the server with SIGKILL and restarts it on the same ports -> records the rooms'
     reconnecting / reconnected / connection_state_changed events, re-attaches a VideoStream
     to the republished track (new sid) and checks frames flow again;
  5. kills it again (--final kill, or --final stop = SIGTERM twice) and leaves it down ->
     records how long until `disconnected` and its DisconnectReason;
  6. closes everything and prints a summary (frame rate, CPU, events, thread counts).
Exit code 0 when frames flowed and the checks passed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server import LiveKitServer


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


T0 = time.monotonic()
threads_before_import = os_threads()
_t = time.perf_counter()
import numpy as np  # noqa: E402
from livekit import api, rtc  # noqa: E402

IMPORT_MS = (time.perf_counter() - _t) * 1000
threads_after_import = os_threads()

try:
    import av
except ImportError:  # optional
    av = None

CODECS = {"h264": rtc.VideoCodec.H264, "vp9": rtc.VideoCodec.VP9, "vp8": rtc.VideoCodec.VP8}


class EventLog:
    def __init__(self) -> None:
        self.items: list[tuple[float, str, str, str]] = []

    def attach(self, room: rtc.Room, who: str) -> None:
        def rec(name: str):
            def handler(*args):
                detail = ", ".join(_describe(a, name) for a in args)
                self.items.append((time.monotonic() - T0, who, name, detail))

            return handler

        for name in (
            "participant_connected",
            "participant_disconnected",
            "track_published",
            "track_subscribed",
            "track_unsubscribed",
            "track_unpublished",
            "local_track_published",
            "local_track_subscribed",
            "connected",
            "connection_state_changed",
            "reconnecting",
            "reconnected",
            "disconnected",
        ):
            room.on(name, rec(name))

    def names(self, who: str) -> list[str]:
        return [n for _, w, n, _ in self.items if w == who]

    def first(self, who: str, name: str, after: float = 0.0):
        for t, w, n, d in self.items:
            if w == who and n == name and t >= after:
                return t, d
        return None


def _describe(a, event: str) -> str:
    if isinstance(a, int):  # enums from the protobufs arrive as plain ints
        enum = rtc.DisconnectReason if event == "disconnected" else rtc.ConnectionState
        try:
            return f"{enum.Name(a)}"
        except ValueError:
            return str(a)
    for attr in ("identity", "sid"):
        if hasattr(a, attr):
            return f"{type(a).__name__}({getattr(a, attr)})"
    return type(a).__name__


def make_frame(w: int, h: int, i: int) -> rtc.VideoFrame:
    rgba = np.zeros((h, w, 4), dtype=np.uint8)
    rgba[: h // 2, :, 0] = 255  # top half red
    rgba[h // 2 :, :, 2] = 255  # bottom half blue
    rgba[..., 3] = 255
    x = (i * 8) % w
    rgba[:, x : x + 16, :3] = 255  # moving white bar: encoder has something to do
    return rtc.VideoFrame(w, h, rtc.VideoBufferType.RGBA, rgba.tobytes())


def rtc_to_numpy_rgba(frame: rtc.VideoFrame) -> np.ndarray:
    """Any rtc.VideoFrame (received ones are I420) -> (h, w, 4) uint8 RGBA copy."""
    rgba = frame.convert(rtc.VideoBufferType.RGBA)
    return np.frombuffer(rgba.data, dtype=np.uint8).reshape(rgba.height, rgba.width, 4).copy()


def rtc_i420_to_av(frame: rtc.VideoFrame):
    """I420 rtc.VideoFrame -> av.VideoFrame(yuv420p) without colour conversion (planar copy)."""
    if frame.type != rtc.VideoBufferType.I420:
        frame = frame.convert(rtc.VideoBufferType.I420)
    w, h = frame.width, frame.height
    yuv = np.frombuffer(frame.data, dtype=np.uint8)[: w * h * 3 // 2].reshape(h * 3 // 2, w)
    return av.VideoFrame.from_ndarray(yuv, format="yuv420p")


def av_to_rtc(vf) -> rtc.VideoFrame:
    """av.VideoFrame -> rtc.VideoFrame via RGBA (what VideoSource.capture_frame takes)."""
    arr = vf.to_ndarray(format="rgba")
    return rtc.VideoFrame(vf.width, vf.height, rtc.VideoBufferType.RGBA, arr.tobytes())


async def main(args) -> int:
    report: dict = {
        "versions": {
            "livekit": rtc.__version__ if hasattr(rtc, "__version__") else "?",
            "livekit-api": api.__version__,
            "numpy": np.__version__,
            "av": getattr(av, "__version__", None),
        },
        "import_livekit_rtc_and_api_ms": round(IMPORT_MS),
        "os_threads": {
            "before_import": threads_before_import,
            "after_import": threads_after_import,
        },
    }
    ok = True
    events = EventLog()
    room_name = "smoke-room"
    srv = LiveKitServer()
    srv.start()
    report["server"] = {"url": srv.url, "udp_port": srv.udp_port}
    try:
        # -- tokens + room via the server API ---------------------------------------------
        def token(identity: str) -> str:
            return (
                api.AccessToken(srv.api_key, srv.api_secret)
                .with_identity(identity)
                .with_name(identity)
                .with_grants(api.VideoGrants(room_join=True, room=room_name))
                .to_jwt()
            )

        lkapi = api.LiveKitAPI(url=srv.http_url, api_key=srv.api_key, api_secret=srv.api_secret)
        room_info = await lkapi.room.create_room(
            api.CreateRoomRequest(name=room_name, empty_timeout=60)
        )
        listed = await lkapi.room.list_rooms(api.ListRoomsRequest())
        report["api_room"] = {"created": room_info.name, "listed": [r.name for r in listed.rooms]}

        # -- A publishes ----------------------------------------------------------------------
        room_a, room_b = rtc.Room(), rtc.Room()
        events.attach(room_a, "A")
        events.attach(room_b, "B")
        t = time.monotonic()
        await room_a.connect(srv.url, token("inference-server-smoke"))
        report["connect_a_ms"] = round((time.monotonic() - t) * 1000)
        report["os_threads"]["after_first_connect"] = os_threads()

        source = rtc.VideoSource(args.width, args.height)
        track = rtc.LocalVideoTrack.create_video_track("camera", source)
        opts = rtc.TrackPublishOptions(
            source=rtc.TrackSource.SOURCE_CAMERA, video_codec=CODECS[args.codec]
        )
        opts.video_encoding.max_framerate = args.fps
        opts.video_encoding.max_bitrate = 2_000_000
        pub = await room_a.local_participant.publish_track(track, opts)
        report["published"] = {"sid": pub.sid, "codec": args.codec}

        stop_pub = asyncio.Event()
        sent = 0

        async def publisher():
            nonlocal sent
            period = 1.0 / args.fps
            nxt = time.monotonic()
            while not stop_pub.is_set():
                source.capture_frame(make_frame(args.width, args.height, sent))
                sent += 1
                nxt += period
                await asyncio.sleep(max(0.0, nxt - time.monotonic()))

        pub_task = asyncio.create_task(publisher())

        # -- B subscribes ---------------------------------------------------------------------
        got_track: asyncio.Future = asyncio.get_running_loop().create_future()
        # After a server restart the SDK does a full reconnect: the publisher republishes under a
        # NEW track sid and B gets a new track_subscribed. A VideoStream is bound to one track, so
        # re-attach on every track_subscribed (the old stream just ends).
        consumers: list[asyncio.Task] = []
        streams: list[rtc.VideoStream] = []

        @room_b.on("track_subscribed")
        def _on_sub(track_, publication, participant):
            if not (
                participant.identity.startswith("inference-server-")
                and track_.kind == rtc.TrackKind.KIND_VIDEO
            ):
                return
            if not got_track.done():
                got_track.set_result(track_)
            else:
                st = rtc.VideoStream(track_)
                streams.append(st)
                consumers.append(asyncio.create_task(consume(st)))

        t = time.monotonic()
        await room_b.connect(srv.url, token("viewer-smoke"))
        remote_track = await asyncio.wait_for(got_track, 15)
        report["b_connect_to_track_subscribed_ms"] = round((time.monotonic() - t) * 1000)

        stream = rtc.VideoStream(
            remote_track
        )  # yields VideoFrameEvent(frame, timestamp_us, rotation)
        streams.append(stream)
        frames = 0
        first_frame_ms = None
        sizes: set = set()
        colour_ok = 0
        last_frame = None
        t_sub = time.monotonic()
        cpu0, srv_cpu0, wall0 = self_cpu_seconds(), proc_cpu_seconds(srv.proc.pid), None

        async def consume(stream):
            nonlocal frames, first_frame_ms, last_frame, colour_ok, wall0
            async for ev in stream:
                f = ev.frame
                if first_frame_ms is None:
                    first_frame_ms = round((time.monotonic() - t_sub) * 1000)
                    wall0 = time.monotonic()
                frames += 1
                sizes.add((f.width, f.height, rtc.VideoBufferType.Name(f.type)))
                last_frame = f
                if frames % 15 == 1:
                    rgba = rtc_to_numpy_rgba(f)
                    top = rgba[: f.height // 4, :, :3].reshape(-1, 3).mean(0)
                    bot = rgba[-f.height // 4 :, :, :3].reshape(-1, 3).mean(0)
                    colour_ok += int(
                        top[0] > 150 and top[2] < 120 and bot[2] > 150 and bot[0] < 120
                    )

        consumers.append(asyncio.create_task(consume(stream)))
        await asyncio.sleep(args.seconds)
        wall = time.monotonic() - (wall0 or t_sub)
        cpu = self_cpu_seconds() - cpu0
        srv_cpu = proc_cpu_seconds(srv.proc.pid) - srv_cpu0
        checked = (frames + 14) // 15
        report["media"] = {
            "sent_frames": sent,
            "received_frames": frames,
            "first_frame_after_subscribe_ms": first_frame_ms,
            "received_fps": round(frames / wall, 1) if wall > 0 else 0,
            "received_sizes_types": sorted(sizes),
            "colour_checks_passed": f"{colour_ok}/{checked}",
            "cpu_this_process_pct_of_one_core": round(100 * cpu / wall, 1),
            "cpu_livekit_server_pct_of_one_core": round(100 * srv_cpu / wall, 1),
        }
        ok &= frames > args.fps * args.seconds * 0.5 and colour_ok == checked and checked > 0
        if last_frame is not None:
            rgba = rtc_to_numpy_rgba(last_frame)
            conv = {
                "numpy_rgba_shape": list(rgba.shape),
                "received_type": rtc.VideoBufferType.Name(last_frame.type),
            }
            if av is not None:
                vf = rtc_i420_to_av(last_frame)
                back = av_to_rtc(vf)
                conv.update(
                    av_frame=f"{vf.format.name} {vf.width}x{vf.height}", av_back_to_rtc=repr(back)
                )
            report["conversions"] = conv

        # -- server killed and restarted: reconnect -------------------------------------------
        report["os_threads"]["while_streaming"] = os_threads()
        report["py_threads_while_streaming"] = threading.active_count()
        t_kill = time.monotonic() - T0
        frames_before = frames
        srv.kill()
        await asyncio.sleep(args.down_seconds)
        srv.start()
        for _ in range(300):
            if events.first("A", "reconnected", t_kill) and events.first(
                "B", "reconnected", t_kill
            ):
                break
            await asyncio.sleep(0.1)
        t_back = time.monotonic()
        await asyncio.sleep(3)
        restart = {}
        for who in ("A", "B"):
            seq = [
                (round(t - t_kill, 2), n, d)
                for t, w, n, d in events.items
                if w == who and t >= t_kill
            ]
            restart[who] = seq
        report["kill_and_restart"] = {
            "down_seconds": args.down_seconds,
            "events": restart,
            "frames_after_restart": frames - frames_before,
            "fps_in_3s_after_reconnected": round(
                (frames - frames_before) / (time.monotonic() - t_back), 1
            ),
        }
        ok &= frames - frames_before > args.fps  # media flows again on the republished track

        # -- server gone for good: disconnected -----------------------------------------------
        t_kill2 = time.monotonic() - T0
        srv.kill() if args.final == "kill" else srv.stop()
        for _ in range(int(args.disconnect_wait * 10)):
            if events.first("A", "disconnected", t_kill2) and events.first(
                "B", "disconnected", t_kill2
            ):
                break
            await asyncio.sleep(0.1)
        final = {}
        for who in ("A", "B"):
            seq = [
                (round(t - t_kill2, 2), n, d)
                for t, w, n, d in events.items
                if w == who and t >= t_kill2
            ]
            final[who] = seq
        report["gone_for_good"] = {"how": args.final, "events": final}

        # -- clean close ------------------------------------------------------------------------
        stop_pub.set()
        await pub_task
        for st in streams:
            await st.aclose()
        for c in consumers:
            c.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        await source.aclose()
        await room_a.disconnect()
        await room_b.disconnect()
        await lkapi.aclose()
        report["events_before_kill"] = {
            w: [n for t, ww, n, _ in events.items if ww == w and t < t_kill] for w in ("A", "B")
        }
    finally:
        srv.close()
    report["ok"] = bool(ok)
    print(json.dumps(report, indent=1, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--codec", choices=sorted(CODECS), default="h264")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--down-seconds", type=float, default=1.0)
    p.add_argument("--disconnect-wait", type=float, default=60.0)
    p.add_argument(
        "--final",
        choices=("kill", "stop"),
        default="kill",
        help="end the server with SIGKILL, or with server.stop() (SIGTERM x2)",
    )
    sys.exit(asyncio.run(main(p.parse_args())))
