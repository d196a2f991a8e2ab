"""One Session over LiveKit, run as a process inside the client end of an impaired network
(tests/test_impaired_livekit.py starts it with ``ImpairedNetwork.run``): LiveKit's SDK
makes its sockets on native threads of its own, so its client cannot be moved into a
namespace inside the test's process.

    python tests/impaired_livekit_client.py ws://10.200.0.1:8765 API_KEY_FILE

It connects with a 640x360 synthetic camera at 15 fps, applies nothing itself, and prints
JSON lines on stdout: ``{"stats": {...}}`` for each ``session.stats`` sample as it comes
(the test cuts them into stages), then, once stdin closes, ``{"summary": {...}}``: the
loss over every sample (packets-weighted), mean inbound fps and bitrate, the billed
seconds the client saw (``rto.billed_seconds``, across server sessions), reconnects.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys

import msgspec

import rxrealtime as rt
from rxrealtime import operators as rto
from rxrealtime.quality import SessionStats, packet_loss_over


def emit(kind: str, body: object) -> None:
    sys.stdout.write(json.dumps({kind: body}) + "\n")
    sys.stdout.flush()


async def stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()  # until EOF


async def main(url: str, key_file: str) -> None:
    with open(key_file, encoding="utf-8") as fh:
        api_key = fh.read().strip()
    session = rt.Session(url, api_key=api_key, transport="livekit")
    samples: list[SessionStats] = []
    billed: list[int] = []
    reconnects: list[object] = []

    def on_stats(stats: SessionStats) -> None:
        samples.append(stats)
        emit("stats", msgspec.to_builtins(stats))

    session.stats.subscribe(on_stats)
    session.generation_ticks.pipe(rto.billed_seconds(resets=session.session_started)).subscribe(
        billed.append
    )
    session.session_started.subscribe(reconnects.append)
    track = rt.media.SyntheticTrack(640, 360, fps=15)
    async with session.connect(local_track=track, prompt="rain"):
        emit("connected", {"state": str(session.state)})
        await stdin_closed()
    seen = [s for s in samples if s.frames_received > 0]
    emit("summary", {
        "loss": packet_loss_over(samples),
        "inbound_fps": statistics.fmean(s.inbound_fps for s in seen) if seen else 0.0,
        "bitrate_bps": statistics.fmean(s.inbound_bitrate_bps or 0.0 for s in seen) if seen
        else 0.0,
        "billed_s": billed[-1] if billed else 0,
        "server_sessions": len(reconnects),
        "frames_received": samples[-1].frames_received if samples else 0,
    })  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
