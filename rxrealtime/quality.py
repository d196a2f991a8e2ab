"""How a session's media is doing: typed stats from raw counters, and a quality verdict.

Pure: transports report cumulative counters (:class:`MediaCounters`), a
:class:`StatsSampler` turns two samples into per-interval figures (:class:`SessionStats`),
and :func:`assess` grades them against :class:`QualityThresholds` into a
:class:`ConnectionQuality`. The same function backs ``session.quality`` and the
``rto.quality()`` operator, so a verdict computed live and one computed from a replay
agree.

The thresholds, worst level first (a figure at or beyond a bound is that level):

============  ========  ========  ==========
factor        fair      poor      critical
============  ========  ========  ==========
rtt           150 ms    300 ms    600 ms
packet loss   2 %       5 %       15 %
inbound fps   below 12  below 8   below 4
freeze        -         -         ongoing
============  ========  ========  ==========
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec

from .latency import GlassToGlass

__all__ = [
    "ConnectionQuality",
    "MediaCounters",
    "QualityThresholds",
    "QualityWatch",
    "SessionStats",
    "StatsSampler",
    "assess",
    "packet_loss_over",
]

Level = Literal["good", "fair", "poor", "critical"]
LEVELS: tuple[Level, ...] = ("good", "fair", "poor", "critical")


class MediaCounters(msgspec.Struct, frozen=True, gc=False):
    """Cumulative counters a transport reads off its media (``None``: not known)."""

    frames_received: int = 0
    frames_sent: int = 0
    bytes_received: int | None = None
    bytes_sent: int | None = None
    packets_received: int | None = None
    packets_lost: int | None = None
    jitter_s: float | None = None
    rtt_s: float | None = None
    candidate_pair: str | None = None
    """``host``, ``srflx``, ``prflx`` or ``relay``: how the media path was made."""


class SessionStats(msgspec.Struct, frozen=True, gc=False):
    """One interval of media figures (``interval_s`` long), for dashboards and alerts."""

    interval_s: float
    inbound_fps: float
    outbound_fps: float
    inbound_bitrate_bps: float | None = None
    outbound_bitrate_bps: float | None = None
    frames_received: int = 0
    packet_loss: float | None = None
    """Fraction of packets lost in this interval (0 to 1)."""
    jitter_s: float | None = None
    rtt_s: float | None = None
    freezes: int = 0
    """Video stalls so far in this session."""
    freeze_s: float = 0.0
    """Seconds of stalled video so far (an ongoing stall counts up to now)."""
    frozen: bool = False
    candidate_pair: str | None = None
    latency: GlassToGlass | None = None
    """Glass-to-glass latency (time to first frame, p50, p90, samples), where the session
    can match generated frames to the frames it sent; ``None`` where it cannot (e.g.
    against a service that keeps neither LiveKit's frame metadata nor the picture stamp)."""
    packets_received: int | None = None
    """Media packets received in this interval (retransmissions aside), with
    ``packets_lost`` the weights for a loss over many intervals: the mean of the
    intervals' ``packet_loss`` overweights short, sparse intervals."""
    packets_lost: int | None = None


class StatsSampler:
    """Turns successive :class:`MediaCounters` into :class:`SessionStats` deltas."""

    def __init__(self) -> None:
        self._previous: MediaCounters | None = None
        self._at = 0.0

    def sample(
        self, counters: MediaCounters, now: float, *, freezes: int = 0, freeze_s: float = 0.0,
        frozen: bool = False, latency: GlassToGlass | None = None,
    ) -> SessionStats | None:  # fmt: skip
        """The figures since the previous sample, or ``None`` for the first one."""
        previous, at = self._previous, self._at
        self._previous, self._at = counters, now
        if previous is None or now <= at:
            return None
        span = now - at
        loss = got = lost = None
        if counters.packets_received is not None and counters.packets_lost is not None:
            got = max(0, counters.packets_received - (previous.packets_received or 0))
            lost = max(0, counters.packets_lost - (previous.packets_lost or 0))
            loss = lost / (got + lost) if got + lost > 0 else 0.0
        return SessionStats(
            interval_s=round(span, 3),
            inbound_fps=round((counters.frames_received - previous.frames_received) / span, 2),
            outbound_fps=round((counters.frames_sent - previous.frames_sent) / span, 2),
            inbound_bitrate_bps=_rate(counters.bytes_received, previous.bytes_received, span),
            outbound_bitrate_bps=_rate(counters.bytes_sent, previous.bytes_sent, span),
            frames_received=counters.frames_received,
            packet_loss=loss,
            jitter_s=counters.jitter_s,
            rtt_s=counters.rtt_s,
            freezes=freezes,
            freeze_s=round(freeze_s, 3),
            frozen=frozen,
            candidate_pair=counters.candidate_pair,
            latency=latency,
            packets_received=got,
            packets_lost=lost,
        )


def packet_loss_over(samples: Iterable[SessionStats]) -> float | None:
    """The packet loss over many intervals, each weighted by its packets (``None`` when no
    interval counted any): what a run or a stage of it really lost, where the mean of the
    intervals' ratios would let a sparse interval (one loss in three packets) swing it."""
    got = lost = 0
    for stats in samples:
        if stats.packets_received is not None and stats.packets_lost is not None:
            got += stats.packets_received
            lost += stats.packets_lost
    return lost / (got + lost) if got + lost else None


def _rate(now: int | None, before: int | None, span: float) -> float | None:
    if now is None or before is None:
        return None
    return round(8 * max(0, now - before) / span, 1)


class QualityThresholds(msgspec.Struct, frozen=True):
    """Where each factor turns fair, poor and critical (see the module's table)."""

    rtt_s: tuple[float, float, float] = (0.15, 0.3, 0.6)
    packet_loss: tuple[float, float, float] = (0.02, 0.05, 0.15)
    min_fps: tuple[float, float, float] = (12.0, 8.0, 4.0)


class ConnectionQuality(msgspec.Struct, frozen=True, gc=False):
    """The verdict: ``level`` and the factor that limits it (``None`` when good)."""

    level: Level
    limiting: str | None = None
    rtt_s: float | None = None
    packet_loss: float | None = None
    inbound_fps: float | None = None


def _grade(value: float | None, bounds: tuple[float, float, float], low_is_bad: bool) -> int:
    if value is None:
        return 0
    if low_is_bad:
        return sum(value < bound for bound in bounds)
    return sum(value >= bound for bound in bounds)


def assess(stats: SessionStats, thresholds: QualityThresholds | None = None) -> ConnectionQuality:
    """Grade one interval: the worst factor decides; ties go to the first named here."""
    t = thresholds or QualityThresholds()
    grades = {
        "freeze": 3 if stats.frozen else 0,
        "packet_loss": _grade(stats.packet_loss, t.packet_loss, low_is_bad=False),
        "rtt": _grade(stats.rtt_s, t.rtt_s, low_is_bad=False),
        "fps": _grade(stats.inbound_fps, t.min_fps, low_is_bad=True),
    }
    worst = max(grades, key=lambda factor: grades[factor])
    level = grades[worst]
    return ConnectionQuality(
        level=LEVELS[level],
        limiting=worst if level else None,
        rtt_s=stats.rtt_s,
        packet_loss=stats.packet_loss,
        inbound_fps=stats.inbound_fps,
    )


class QualityWatch:
    """The one on-change rule of quality verdicts, shared by ``session.quality`` and the
    :func:`~rxrealtime.operators.quality` operator, so both publish exactly when the
    level or the limiting factor changes: a verdict's figures move with every sample,
    and a stream of unchanged verdicts would only be noise to a dashboard or an alert.
    """

    __slots__ = ("_key", "thresholds")

    def __init__(self, thresholds: QualityThresholds | None = None) -> None:
        self.thresholds = thresholds
        self._key: tuple[Level, str | None] | None = None

    def update(self, stats: SessionStats) -> ConnectionQuality | None:
        """The verdict for ``stats`` if it differs from the last one published, else None."""
        verdict = assess(stats, self.thresholds)
        key = (verdict.level, verdict.limiting)
        if key == self._key:
            return None
        self._key = key
        return verdict
