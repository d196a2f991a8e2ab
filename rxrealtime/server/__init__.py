"""The embedded reference server: PROTOCOL.md on loopback, for the demo and every test.

Real aiohttp WebSocket signaling and a real aiortc peer that sends back the client's
video with a visible, prompt-dependent transform (numpy on each frame). A billing
clock sends ``generation_tick`` every ``tick_interval_s``; each tick bills
``seconds_per_tick`` seconds, so tests can run the clock faster than real time while
the totals stay whole numbers. :class:`Faults` switches misbehaviour on for tests.

One module a job: :mod:`.settings` (settings and fault switches), :mod:`.clock` (the
billing clock and its rules), :mod:`.video` (the generated track), :mod:`.peer` and
:mod:`.sessions` (each WebSocket client), :mod:`.context` (what a client may reach of
the server), :mod:`.app` (the aiohttp app). LiveKit mode (``media="livekit"``) adds
:mod:`.livekit_rooms` (the LiveKit server, tokens, one room per session) and
:mod:`.livekit_video` (the server's generating participant in each room).
"""

from __future__ import annotations

from .app import EmbeddedServer, serve_embedded
from .sessions import ServerSession, ViewerSession
from .settings import BadFrame, Faults, Media, ServerSettings
from .video import prompt_tint, transform_frame

__all__ = [
    "BadFrame",
    "EmbeddedServer",
    "Faults",
    "Media",
    "ServerSession",
    "ServerSettings",
    "ViewerSession",
    "prompt_tint",
    "serve_embedded",
    "transform_frame",
]
