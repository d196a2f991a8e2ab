"""A video jitter buffer that gives up on a lost packet, so video comes back after loss.

aiortc's video receiver assembles frames in a 512-packet jitter buffer that hands a frame
on only when every packet before it is there. A packet that is lost for good (its NACK or
its retransmission lost too, as happens under heavy loss or a blackhole) leaves a hole the
buffer waits on until 512 newer packets have arrived: at 640x360@15 (~70 packets/s) that
is 7-8 s of frozen video *after the network has recovered* (measured on an impaired veth
link: 30 % loss, then none, 7.9 s without a frame while packets kept arriving).

:class:`RecoveringJitterBuffer` keeps aiortc's rules and adds one: when the media queued
behind a hole spans more than ``max_wait_s`` of RTP time, the frame the hole belongs to
is dropped, the buffer moves on to the next frame, and a keyframe is asked for (PLI), as
WebRTC's own receivers do. Decisions are on RTP timestamps, not the wall clock, so the
rule is tested by feeding packets, with no socket and no sleep.

:func:`install` puts one on an aiortc receiver. aiortc offers no public hook for this; the
attribute is its private one (1.x), and without it the receiver is left as it is.
"""

from __future__ import annotations

import logging
from typing import Any

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

__all__ = ["DEFAULT_MAX_WAIT_S", "RecoveringJitterBuffer", "install"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_WAIT_S = 0.5
"""Media queued behind a hole before it is given up: long enough for a NACK and its
retransmission on a link of a few hundred ms round trip, short against aiortc's 7 s."""
CAPACITY = 512  # aiortc's own, so a large keyframe still fits
_RECEIVER_ATTR = "_RTCRtpReceiver__jitter_buffer"
SKIPPED = object()
"""What :meth:`RecoveringJitterBuffer._past_stale_hole` says when it gave a hole up."""


def _rtp_after(newer: int, older: int) -> int:
    """How far RTP timestamp ``newer`` is after ``older`` (32-bit wrap-around)."""
    return (newer - older) & 0xFFFFFFFF


class RecoveringJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, with holes given up after ``max_wait_s`` of media."""

    def __init__(self, *, max_wait_s: float = DEFAULT_MAX_WAIT_S, clock_rate: int = 90_000,
                 capacity: int = CAPACITY, min_request_gap_s: float = 1.0) -> None:  # fmt: skip
        super().__init__(capacity=capacity, is_video=True)
        self.max_wait = int(max_wait_s * clock_rate)
        self.holes_skipped = 0
        """Holes given up (each costs a frame or two and a keyframe request)."""
        self._asked_at: int | None = None
        self.min_request_gap = int(min_request_gap_s * clock_rate)

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        if frame is not None:
            return pli, frame
        outcome = self._past_stale_hole(packet.timestamp)
        if isinstance(outcome, JitterFrame):
            return pli, outcome  # the hole comes after a whole frame: hand it on first
        if outcome is SKIPPED:
            self.holes_skipped += 1
            return self._may_ask(packet.timestamp), self._remove_frame(packet.sequence_number)
        return pli, None

    def _may_ask(self, now: int) -> bool:
        """At most one keyframe request per ``min_request_gap`` of media: a keyframe is
        several times a delta frame, and on a lossy, capped link asking for one per
        given-up hole makes bursts that overflow the cap's queue and lose more."""
        if self._asked_at is not None and _rtp_after(now, self._asked_at) < self.min_request_gap:
            return False
        self._asked_at = now
        return True

    def _past_stale_hole(self, newest: int) -> JitterFrame | object | None:
        """Move past the first hole once ``max_wait`` of media has queued behind it.

        The packets before the hole share one timestamp (else aiortc would have handed
        their frame on): a frame that is whole by its marker bit is returned; otherwise it
        is dropped. The frame right behind the hole is dropped too (its first packets may
        be what was lost: a decoder is better without it): :data:`SKIPPED`. ``None``: no
        hole has waited long enough.
        """
        if self._origin is None:
            return None
        cap, origin = self._capacity, self._origin
        hole = next((i for i in range(cap) if self._packets[(origin + i) % cap] is None), None)
        if hole is None:
            return None
        behind = next((p for i in range(hole + 1, cap)
                       if (p := self._packets[(origin + i) % cap]) is not None), None)  # fmt: skip
        if behind is None or _rtp_after(newest, behind.timestamp) <= self.max_wait:
            return None
        before = [self._packets[(origin + i) % cap] for i in range(hole)]
        run = [p for p in before if p is not None]
        if run and run[-1].marker:
            self.remove(hole)
            return JitterFrame(data=b"".join(p._data for p in run), timestamp=run[0].timestamp)  # type: ignore[attr-defined]
        self.remove(hole + 1)  # an incomplete frame, and the hole
        for _ in range(cap):
            slot = self._packets[self._origin % cap]
            if slot is not None and slot.timestamp != behind.timestamp:
                break  # the first packet of the next frame
            self.remove(1)
        logger.debug("jitter buffer: gave up a frame with a lost packet")
        return SKIPPED


def install(receiver: Any, *, max_wait_s: float = DEFAULT_MAX_WAIT_S) -> bool:
    """Give aiortc video ``receiver`` a :class:`RecoveringJitterBuffer` (before its media
    flows); ``False`` where this aiortc keeps its buffer elsewhere (left as it was)."""
    current = getattr(receiver, _RECEIVER_ATTR, None)
    if not isinstance(current, JitterBuffer) or not getattr(current, "_is_video", False):
        return False  # an audio receiver's, or an aiortc that keeps it elsewhere
    setattr(receiver, _RECEIVER_ATTR, RecoveringJitterBuffer(max_wait_s=max_wait_s))
    return True
