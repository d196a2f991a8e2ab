"""Code written for the vendor's SDK (decart 0.2.4), on rxrealtime: the import lines point
at ``rxrealtime.compat.decart``, the rest is the vendor's API, plus one line that pipes
the session's stream through rxrealtime's operators.

It runs against the embedded server's LiveKit mode, which needs LiveKit's SDK (``pip
install 'rxrealtime[livekit]'``) and the livekit-server binary (``make livekit``);
without them it says what is missing and exits.
"""

import asyncio
import sys
from typing import Any

import rxrealtime as rt
from rxrealtime import operators as rto
from rxrealtime.compat.decart import models  # was: from decart import models
from rxrealtime.compat.decart.realtime import (  # was: from decart.realtime import ...
    RealtimeClient,
    RealtimeConnectOptions,
)


def missing() -> str | None:
    """What this example needs and does not find, if anything."""
    try:
        import livekit.rtc  # noqa: F401
    except ImportError:
        return "LiveKit's SDK is not installed: pip install 'rxrealtime[livekit]'"
    from rxrealtime.server.livekit_server import BUILD_HINT, find_livekit_binary

    return None if find_livekit_binary() else f"no livekit-server binary: {BUILD_HINT}"


async def camera(source: Any, width: int, height: int) -> None:
    """A stand-in camera: a flat colour, 15 frames a second."""
    from livekit import rtc

    frame = rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA,
                           bytes((40, 90, 200, 255)) * (width * height))  # fmt: skip
    while True:
        source.capture_frame(frame)
        await asyncio.sleep(1 / 15)


async def main() -> None:
    from livekit import rtc

    async with rt.serve_embedded(media="livekit", tick_interval_s=0.5) as server:
        source = rtc.VideoSource(320, 240)
        track = rtc.LocalVideoTrack.create_video_track("camera", source)
        feeding = asyncio.ensure_future(camera(source, 320, 240))

        # -- the vendor's API, unchanged --------------------------------------------
        client = await RealtimeClient.connect(
            base_url=server.url,  # the service: client.realtime_base_url of a DecartClient
            api_key=server.api_key,
            local_track=track,
            options=RealtimeConnectOptions(
                model=models.realtime("lucy-2.5"),
                on_remote_stream=lambda t: print("remote video:", type(t).__name__),
            ),
        )
        client.on("connection_change", lambda state: print("state:", state))
        client.on("error", lambda error: print("error:", error))

        # -- the one new line: billed seconds across reconnects, priced, as a stream ----
        client.streams.generation_ticks.pipe(
            rto.billed_seconds(resets=client.streams.session_started), rto.cost("0.01")
        ).subscribe(lambda cost: print("cost so far:", cost))

        await client.set_prompt("a watercolor cat")
        print("prompt acknowledged")
        await asyncio.sleep(3)
        await client.disconnect()
        feeding.cancel()
        await source.aclose()


if __name__ == "__main__":
    reason = missing()
    if reason is not None:
        print(f"skipped: {reason}")
        sys.exit(0)
    asyncio.run(main())
