"""The reference server's "generation": the client's own video, tinted by the prompt.

Visible and prompt-dependent, so an end-to-end test can tell from received pixels that
a prompt took effect, yet cheap enough (numpy on each frame) to run many sessions.
"""

from __future__ import annotations

import hashlib
from typing import Protocol, cast

import numpy as np
from aiortc import MediaStreamTrack
from av import VideoFrame

__all__ = ["FrameSink", "GeneratedTrack", "prompt_tint", "transform_frame"]


def prompt_tint(prompt: str) -> tuple[int, int, int]:
    """The colour a prompt paints on the video: stable, bright enough to see."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    return (64 + digest[0] % 192, 64 + digest[1] % 192, 64 + digest[2] % 192)


def transform_frame(
    rgb: np.ndarray, tint: tuple[int, int, int], out: np.ndarray | None = None
) -> np.ndarray:
    """The "generation": a solid band of the prompt's tint on top, the rest blended with it.

    ``out`` (same shape, uint8; may be a view, e.g. the RGB of an RGBA buffer) is written
    instead of a new array, so a per-frame loop can reuse one buffer.
    """
    colour = np.asarray(tint, dtype=np.uint8)
    out = np.right_shift(rgb, 1, out=out)
    out += colour >> 1  # at most 127 + 127: no overflow
    band = max(2, rgb.shape[0] // 6)
    out[:band] = colour
    return out


class FrameSink(Protocol):
    """What a generated track needs from its session: the tint, and word of each frame
    (the first one starts generation and its billing clock)."""

    @property
    def tint(self) -> tuple[int, int, int]: ...

    def on_frame(self) -> None: ...

    def frame_due(self) -> bool:
        """Whether to send this generated frame (``False``: a fault drops or freezes it)."""
        ...


class GeneratedTrack(MediaStreamTrack):
    """The server's output: the source video transformed by the session's current prompt."""

    kind = "video"

    def __init__(self, source: MediaStreamTrack, session: FrameSink) -> None:
        super().__init__()
        self._source = source
        self._session = session

    async def recv(self) -> VideoFrame:
        while True:
            frame = cast(VideoFrame, await self._source.recv())
            self._session.on_frame()
            if self._session.frame_due():
                break
        rgb = transform_frame(frame.to_ndarray(format="rgb24"), self._session.tint)
        # Hand encoders yuv420p: they would otherwise convert this frame themselves, and
        # two peers (client + viewers, via MediaRelay) converting one frame at once in
        # encoder threads crashes libav (aiortc issue #767).
        out = VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        out.pts, out.time_base = frame.pts, frame.time_base
        return out

    def stop(self) -> None:
        super().stop()
        self._source.stop()
