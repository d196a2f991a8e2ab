"""Typed stats and the quality verdict: pure figures, graded by one table."""

from __future__ import annotations

import pytest
from reactivex.testing import ReactiveTest, TestScheduler

from rxrealtime import operators as rto
from rxrealtime.quality import (
    ConnectionQuality,
    MediaCounters,
    QualityThresholds,
    QualityWatch,
    SessionStats,
    StatsSampler,
    assess,
    packet_loss_over,
)

on_next, on_completed = ReactiveTest.on_next, ReactiveTest.on_completed


def stats(**figures: object) -> SessionStats:
    base: dict[str, object] = {"interval_s": 1.0, "inbound_fps": 20.0, "outbound_fps": 20.0}
    return SessionStats(**{**base, **figures})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("figures", "level", "limiting"),
    [
        ({}, "good", None),
        ({"rtt_s": 0.149}, "good", None),
        ({"rtt_s": 0.15}, "fair", "rtt"),
        ({"rtt_s": 0.35}, "poor", "rtt"),
        ({"rtt_s": 0.6}, "critical", "rtt"),
        ({"packet_loss": 0.03}, "fair", "packet_loss"),
        ({"packet_loss": 0.2, "rtt_s": 0.35}, "critical", "packet_loss"),
        ({"inbound_fps": 11.9}, "fair", "fps"),
        ({"inbound_fps": 5.0}, "poor", "fps"),
        ({"inbound_fps": 0.0}, "critical", "fps"),
        ({"frozen": True}, "critical", "freeze"),
    ],
)
def test_the_worst_factor_decides_the_level(figures: dict, level: str, limiting: str) -> None:
    verdict = assess(stats(**figures))
    assert (verdict.level, verdict.limiting) == (level, limiting)


def test_thresholds_are_configurable() -> None:
    strict = QualityThresholds(rtt_s=(0.01, 0.02, 0.03))
    assert assess(stats(rtt_s=0.025), strict).level == "poor"


def test_the_sampler_turns_counters_into_interval_figures() -> None:
    sampler = StatsSampler()
    first = MediaCounters(frames_received=10, frames_sent=12, bytes_received=1000,
                          packets_received=100, packets_lost=0)  # fmt: skip
    assert sampler.sample(first, 10.0) is None  # nothing to compare with yet
    second = MediaCounters(frames_received=40, frames_sent=42, bytes_received=3000,
                           packets_received=190, packets_lost=10, rtt_s=0.05)  # fmt: skip
    figures = sampler.sample(second, 12.0, freezes=1, freeze_s=2.5)
    assert figures is not None
    assert (figures.inbound_fps, figures.outbound_fps) == (15.0, 15.0)
    assert figures.inbound_bitrate_bps == 8000.0 and figures.outbound_bitrate_bps is None
    assert figures.packet_loss == 0.1  # 10 lost of 100 in the interval
    assert (figures.packets_received, figures.packets_lost) == (90, 10)
    assert (figures.rtt_s, figures.freezes, figures.freeze_s) == (0.05, 1, 2.5)


def test_loss_over_many_intervals_is_weighted_by_their_packets() -> None:
    dense = stats(packet_loss=0.1, packets_received=900, packets_lost=100)
    sparse = stats(packet_loss=0.5, packets_received=1, packets_lost=1)  # a stalled second
    assert packet_loss_over([dense, sparse]) == 101 / 1002  # not the mean of ratios, 0.3
    assert packet_loss_over([stats(), stats()]) is None  # no counts, no figure


def test_the_quality_operator_emits_on_change_only_in_virtual_time() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(
        on_next(210, stats()),
        on_next(220, stats(rtt_s=0.01)),  # still good: nothing new
        on_next(230, stats(packet_loss=0.2)),
        on_next(240, stats(packet_loss=0.3)),  # still critical by loss
        on_next(250, stats(frozen=True)),  # critical, but now by a freeze
        on_next(260, stats()),
        on_completed(300),
    )
    result = scheduler.start(lambda: source.pipe(rto.quality()))
    levels = [(m.time, m.value.value.level, m.value.value.limiting)
              for m in result.messages if m.value.kind == "N"]  # fmt: skip
    assert levels == [
        (210, "good", None),
        (230, "critical", "packet_loss"),
        (250, "critical", "freeze"),
        (260, "good", None),
    ]
    assert isinstance(result.messages[0].value.value, ConnectionQuality)


def test_the_watch_publishes_a_verdict_only_when_level_or_limiting_factor_changes() -> None:
    """The rule behind both ``session.quality`` (the shell) and the operator above."""
    watch = QualityWatch(QualityThresholds(rtt_s=(0.1, 0.2, 0.3)))
    samples = [stats(), stats(rtt_s=0.01), stats(rtt_s=0.15), stats(rtt_s=0.16),
               stats(packet_loss=0.03), stats()]  # fmt: skip
    seen = [watch.update(s) for s in samples]
    got = [(v.level, v.limiting) if v else None for v in seen]
    assert got == [("good", None), None, ("fair", "rtt"), None, ("fair", "packet_loss"),
                   ("good", None)]  # fmt: skip
