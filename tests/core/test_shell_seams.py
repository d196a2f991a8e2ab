"""Where the core meets the shell, without a socket.

The core names its output streams by :class:`~rxrealtime.core.events.Stream`, and the
shell maps each to a real stream once.
"""

from __future__ import annotations

from rxrealtime.asyncio.shell import emit_targets
from rxrealtime.core.events import Stream
from rxrealtime.session_streams import SessionStreams
from rxrealtime.streams import HotStream


def test_every_emit_target_is_a_real_stream_of_the_session() -> None:
    streams = SessionStreams()
    targets = emit_targets(streams)
    assert set(targets) == set(Stream)  # no target the shell cannot carry out
    for target, stream in targets.items():
        assert isinstance(stream, HotStream)
        assert streams.streams[target.value] is stream  # the stream the member names
