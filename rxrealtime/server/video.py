"""The reference server's "generation": the client's own video, tinted by the prompt.

Visible and prompt-dependent, so an end-to-end test can tell from received pixels that
a prompt took effect, yet cheap enough to run many sessions: the tint is applied to the
decoded frame's own yuv420p planes (what the decoder gives and the encoder wants), so no
frame is converted to RGB and back. The blend is linear, so blending Y, U and V with the
tint's Y, U and V is the RGB blend of :func:`transform_frame` up to rounding.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import Protocol, cast

import numpy as np
from aiortc import MediaStreamTrack
from av import VideoFrame
from av.video.reformatter import VideoReformatter

from ..media import plane_arrays, rgb_to_yuv

__all__ = [
    "FrameSink",
    "GeneratedTrack",
    "prompt_tint",
    "tint_yuv",
    "transform_frame",
    "transform_planes",
]


def prompt_tint(prompt: str) -> tuple[int, int, int]:
    """The colour a prompt paints on the video: stable, bright enough to see."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    return (64 + digest[0] % 192, 64 + digest[1] % 192, 64 + digest[2] % 192)


tint_yuv = functools.lru_cache(maxsize=64)(rgb_to_yuv)
"""The tint in yuv420p's own terms (:func:`~rxrealtime.media.rgb_to_yuv`), cached: a
generated track asks for it on every frame, and it changes only with the prompt."""


def band_rows(height: int) -> int:
    """Height of the solid band of tint on top of a frame ``height`` rows tall."""
    return max(2, height // 6)


def transform_frame(
    rgb: np.ndarray, tint: tuple[int, int, int], out: np.ndarray | None = None
) -> np.ndarray:
    """The "generation" on RGB: a solid band of the prompt's tint on top, the rest
    blended with it (the LiveKit path, whose frames are RGBA, and the reference for
    :func:`transform_planes`).

    ``out`` (same shape, uint8; may be a view, e.g. the RGB of an RGBA buffer) is written
    instead of a new array, so a per-frame loop can reuse one buffer.
    """
    colour = np.asarray(tint, dtype=np.uint8)
    out = np.right_shift(rgb, 1, out=out)
    out += colour >> 1  # at most 127 + 127: no overflow
    out[: band_rows(rgb.shape[0])] = colour
    return out


def transform_planes(
    planes: Sequence[np.ndarray], yuv: tuple[int, int, int], out: Sequence[np.ndarray]
) -> None:
    """:func:`transform_frame` on yuv420p planes (Y, U, V), written into ``out``.

    Each plane is blended with its component of the tint (``yuv``, see :func:`tint_yuv`)
    and the band is painted on the same rows as in RGB (half as many in the chroma
    planes, rounded up so an odd band stays fully coloured).
    """
    band = band_rows(planes[0].shape[0])
    for index, (src, dst, value) in enumerate(zip(planes, out, yuv, strict=True)):
        np.right_shift(src, 1, out=dst)
        dst += value >> 1  # at most 127 + 127: no overflow
        dst[: band if index == 0 else (band + 1) // 2] = value


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
    """The server's output: the source video transformed by the session's current prompt.

    Every frame it returns is a new yuv420p frame, never written again: encoders get the
    format they want (two peers, client and viewers via ``MediaRelay``, converting one
    shared frame at once in encoder threads crashes libav: aiortc issue #767), and a frame
    an encoder or a viewer still holds is never reused.
    """

    kind = "video"

    def __init__(self, source: MediaStreamTrack, session: FrameSink) -> None:
        super().__init__()
        self._source = source
        self._session = session
        # Only for a source that is not yuv420p already (decoded VP8 and H.264 are): one
        # reformatter for the track's life, so libswscale's context is built once.
        self._reformatter: VideoReformatter | None = None

    async def recv(self) -> VideoFrame:
        while True:
            frame = cast(VideoFrame, await self._source.recv())
            self._session.on_frame()
            if self._session.frame_due():
                break
        if frame.format.name != "yuv420p":
            if self._reformatter is None:
                self._reformatter = VideoReformatter()
            frame = self._reformatter.reformat(frame, format="yuv420p")
        out = VideoFrame(frame.width, frame.height, "yuv420p")
        transform_planes(plane_arrays(frame), tint_yuv(self._session.tint), plane_arrays(out))
        out.pts, out.time_base = frame.pts, frame.time_base
        return out

    def stop(self) -> None:
        super().stop()
        self._source.stop()
