"""What a codec alone costs per frame, with aiortc's own encoder and decoder classes.

Every session's video is encoded and decoded twice per frame: the client encodes its
track and decodes the generated one, the server decodes the client's and encodes what
it generates. So ``K x fps x 2 x (encode + decode)`` CPU-ms per second is spent in the
codec before any Python runs; when that exceeds the machine's cores, no client or
server code can meet a target at that K, and the suite says so with this arithmetic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ._common import summary

__all__ = ["Size", "codec_floor", "codec_ms", "h264_realtime_ms"]


@dataclass(frozen=True)
class Size:
    """A video size and frame rate, as the suite labels it (``320x180@15``)."""

    width: int
    height: int
    fps: float

    @property
    def label(self) -> str:
        return f"{self.width}x{self.height}@{self.fps:g}"


def codec_ms(
    size: Size, frames: int = 40, repeats: int = 5, warmup: int = 5, codec: str = "vp8"
) -> dict[str, Any]:
    """ms of CPU per encode and per decode of one frame of the moving synthetic pattern at
    ``size``, with aiortc's own encoder and decoder classes for ``codec`` (``vp8``, or
    ``h264``: libx264 through PyAV, the nearest measurable stand-in for the OpenH264
    encoder inside LiveKit's native library; realtime settings, default bitrate).

    The first frames (a keyframe, rate control settling) are not timed; each repeat
    times ``frames`` more, so the figures are the steady state a session runs in.
    """
    from aiortc.codecs.h264 import H264Decoder, H264Encoder, h264_depayload
    from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, vp8_depayload
    from aiortc.jitterbuffer import JitterFrame

    from ...media import VIDEO_TIME_BASE, SyntheticTrack

    kinds: dict[str, tuple[Any, Any, Any]] = {
        "vp8": (Vp8Encoder, Vp8Decoder, vp8_depayload),
        "h264": (H264Encoder, H264Decoder, h264_depayload),
    }
    make_encoder, make_decoder, depayload = kinds[codec]
    track = SyntheticTrack(size.width, size.height, size.fps)
    encoder, decoder = make_encoder(), make_decoder()
    encode: list[float] = []
    decode: list[float] = []
    index = 0
    for repeat in range(repeats + 1):
        packets = []
        count = warmup if repeat == 0 else frames
        started = time.process_time()
        for _ in range(count):
            frame = track.pattern_yuv(index)
            frame.pts, frame.time_base = index * 6000, VIDEO_TIME_BASE
            payloads, timestamp = encoder.encode(frame)
            packets.append((b"".join(depayload(p) for p in payloads), timestamp))
            index += 1
        encoded = time.process_time()
        for data, timestamp in packets:
            decoder.decode(JitterFrame(data=data, timestamp=timestamp))
        decoded = time.process_time()
        if repeat:
            encode.append((encoded - started) * 1000 / count)
            decode.append((decoded - encoded) * 1000 / count)
    return {"codec": codec, "encode": summary(encode), "decode": summary(decode)}


def h264_realtime_ms(size: Size, frames: int = 40, repeats: int = 5) -> dict[str, Any]:
    """Like :func:`codec_ms` for H.264 as a realtime WebRTC stack encodes it: libx264
    (PyAV) with ``preset=ultrafast, tune=zerolatency``, one thread, at the bitrate the
    embedded server publishes with. LiveKit's native library encodes with OpenH264,
    which PyAV does not ship; this is the nearest encoder of the same class that can be
    timed here, so the floor it gives is an estimate, and the suite says so."""
    from fractions import Fraction

    import av

    from ...media import SyntheticTrack, encoding_for

    track = SyntheticTrack(size.width, size.height, size.fps)
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = size.width, size.height, "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, round(size.fps)), Fraction(round(size.fps))
    encoder.bit_rate = encoding_for(size.width, size.height, size.fps)[0]
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "threads": "1"}
    decoder = av.CodecContext.create("h264", "r")
    decoder.thread_count = 1
    encode: list[float] = []
    decode: list[float] = []
    index = 0
    for repeat in range(repeats + 1):  # the first round (keyframe, settling) is untimed
        packets: list[Any] = []
        started = time.process_time()
        for _ in range(frames if repeat else 5):
            frame = track.pattern_yuv(index)
            frame.pts = index
            packets += encoder.encode(frame)
            index += 1
        encoded = time.process_time()
        for packet in packets:
            decoder.decode(packet)
        decoded = time.process_time()
        if repeat:
            encode.append((encoded - started) * 1000 / frames)
            decode.append((decoded - encoded) * 1000 / max(1, len(packets)))
    return {"codec": "h264-realtime", "encode": summary(encode), "decode": summary(decode)}


def codec_floor(
    codec: dict[str, Any] | None, size: Size, k: int, cores: int
) -> dict[str, Any] | None:
    """The codec's CPU at ``k`` sessions, in cores, and the arithmetic as a sentence.

    From the fastest repeat: a shared machine only ever adds time, so this is the
    least the codec can cost here.
    """
    if not codec:
        return None
    enc, dec = codec["encode"]["min"], codec["decode"]["min"]
    per_frame = 2 * (enc + dec)
    cpu_s = k * size.fps * per_frame / 1000
    relation = ">" if cpu_s > cores else "<="
    text = (
        f"{k} sessions x {size.fps:g} fps x (fastest repeat: client encode {enc:.2f} + "
        f"client decode {dec:.2f} + server decode {dec:.2f} + server encode {enc:.2f} ms) = "
        f"{cpu_s:.2f} CPU-s per s {relation} {cores} cores, before any Python, RTP or SRTP"
    )
    return {"cores_needed": cpu_s, "per_frame_ms": per_frame, "text": text}
