"""Glass-to-glass latency: from a frame's capture on the client to the generated frame made
from it coming back, as the vendor's JavaScript SDK reports it (time to first frame,
median, p90, samples).

A sample needs the moment a frame left and the moment its generated twin came back, on
one clock. The sender keeps a :class:`StampBook` (a frame's key -> when it was captured);
a receiver that reads a key off a generated frame (LiveKit's frame metadata, or the code
the synthetic source paints into its pictures, :mod:`rxrealtime.stamps`) asks the book.
A key the book never issued gives no sample: against a service that forwards neither,
the figures stay empty rather than wrong. Pure: no clock is read here.
"""

from __future__ import annotations

import collections
import math

import msgspec

__all__ = ["GlassToGlass", "LatencyMeter", "StampBook"]


class GlassToGlass(msgspec.Struct, frozen=True, gc=False):
    """Glass-to-glass latency of the generated video, over the last samples.

    ``first_frame_s`` is the time from a link's start to its first generated frame;
    ``p50_s``/``p90_s`` are taken over the last :attr:`LatencyMeter.window` samples;
    ``samples`` counts every sample of the session. ``source`` says how frames were
    matched: ``frame-metadata`` (LiveKit) or ``picture-stamp`` (the synthetic source).
    """

    first_frame_s: float | None = None
    p50_s: float | None = None
    p90_s: float | None = None
    samples: int = 0
    source: str | None = None


class StampBook:
    """When each recent frame was captured, by the key it was sent with.

    Bounded: only the last ``size`` keys are kept (a frame that takes longer than that many
    frame intervals to come back is lost as a sample, not as memory).
    """

    __slots__ = ("_sent", "_size")

    def __init__(self, size: int = 512) -> None:
        self._sent: collections.OrderedDict[int, float] = collections.OrderedDict()
        self._size = size

    def sent(self, key: int, at: float) -> None:
        """Frame ``key`` was captured at ``at`` (seconds, the caller's clock)."""
        sent = self._sent
        sent[key] = at
        sent.move_to_end(key)
        if len(sent) > self._size:
            sent.popitem(last=False)

    def captured_at(self, key: int) -> float | None:
        """When frame ``key`` was captured, if this book issued it recently."""
        return self._sent.get(key)


class LatencyMeter:
    """Collects samples for one session and summarises them as :class:`GlassToGlass`."""

    window = 300
    """Samples the percentiles are taken over: 10 s of video at 30 fps."""

    def __init__(self) -> None:
        self.samples = 0
        self.first_frame_s: float | None = None
        self.source: str | None = None
        self._recent: collections.deque[float] = collections.deque(maxlen=self.window)

    def first_frame(self, seconds: float) -> None:
        """A link's first generated frame came ``seconds`` after the link started."""
        self.first_frame_s = round(seconds, 4)

    def sample(self, seconds: float, source: str) -> None:
        """One frame's glass-to-glass latency; negative or absurd figures are not samples."""
        if not 0.0 <= seconds < 60.0:
            return
        self.samples += 1
        self.source = source
        self._recent.append(seconds)

    def summary(self) -> GlassToGlass | None:
        """The figures now, or ``None`` before anything was measured."""
        if self.first_frame_s is None and not self.samples:
            return None
        recent = sorted(self._recent)
        return GlassToGlass(first_frame_s=self.first_frame_s, p50_s=_rank(recent, 0.5),
                            p90_s=_rank(recent, 0.9), samples=self.samples,
                            source=self.source)  # fmt: skip


def _rank(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values, rounded to 0.1 ms."""
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return round(ordered[index], 4)
