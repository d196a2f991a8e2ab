"""stall_detector and billing_rate in virtual time: exact times, no sleeps."""

from __future__ import annotations

import pytest
from reactivex.testing import ReactiveTest, TestScheduler

import rxrealtime as rt
from rxrealtime import operators as rto
from rxrealtime.operators import Stall
from rxrealtime.protocol import GenerationTick as T

on_next, on_completed = ReactiveTest.on_next, ReactiveTest.on_completed


def test_stall_detector_fires_when_no_tick_arrives_while_generating() -> None:
    scheduler = TestScheduler()
    ticks = scheduler.create_hot_observable(
        on_next(210, T(1)), on_next(215, T(2)), on_next(240, T(3)), on_completed(500)
    )
    states = scheduler.create_hot_observable(on_next(205, "generating"))
    result = scheduler.start(lambda: ticks.pipe(rto.stall_detector(10, states=states)))
    # clock restarts at 210 and 215; silent 215..225 -> stall; the tick at 240 re-arms it
    assert result.messages == [
        on_next(225, Stall(silent_s=10.0, last_seconds=2)),
        on_next(250, Stall(silent_s=10.0, last_seconds=3)),
        on_completed(500),
    ]


def test_stall_detector_reports_one_stall_per_silence() -> None:
    scheduler = TestScheduler()
    ticks = scheduler.create_hot_observable(on_next(203, T(1)))
    states = scheduler.create_hot_observable(on_next(201, "generating"))
    result = scheduler.start(lambda: ticks.pipe(rto.stall_detector(5, states=states)))
    # silence from 203 to the end (1000): one stall at 208, not one every 5 s
    assert result.messages == [on_next(208, Stall(silent_s=5.0, last_seconds=1))]


def test_stall_detector_is_quiet_when_not_generating() -> None:
    scheduler = TestScheduler()
    ticks = scheduler.create_hot_observable(on_next(210, T(1)))
    states = scheduler.create_hot_observable(
        on_next(201, "connected"),
        on_next(205, "generating"),
        on_next(212, "reconnecting"),  # silence while reconnecting is no stall
        on_next(300, "generating"),  # re-entering starts the clock: nothing until 310
    )
    result = scheduler.start(lambda: ticks.pipe(rto.stall_detector(10, states=states)))
    assert result.messages == [on_next(310, Stall(silent_s=10.0, last_seconds=1))]


def test_stall_detector_accepts_connection_state_values() -> None:
    scheduler = TestScheduler()
    ticks = scheduler.create_hot_observable(on_completed(400))
    states = scheduler.create_hot_observable(on_next(210, rt.ConnectionState.GENERATING))
    result = scheduler.start(lambda: ticks.pipe(rto.stall_detector(30, states=states)))
    assert result.messages == [on_next(240, Stall(silent_s=30.0)), on_completed(400)]


def test_stall_detector_without_states_starts_the_clock_at_subscribe() -> None:
    scheduler = TestScheduler()
    ticks = scheduler.create_hot_observable(on_next(205, T(1)))
    result = scheduler.start(lambda: ticks.pipe(rto.stall_detector(10, scheduler=scheduler)))
    assert result.messages == [on_next(215, Stall(silent_s=10.0, last_seconds=1))]


def test_billing_rate_is_seconds_per_minute_over_the_window() -> None:
    scheduler = TestScheduler()
    totals = scheduler.create_hot_observable(
        on_next(210, 0), on_next(211, 1), on_next(212, 2), on_next(213, 3), on_next(214, 3)
    )
    result = scheduler.start(lambda: totals.pipe(rto.billing_rate(10)))
    assert result.messages == [
        on_next(210, 0.0),  # baseline
        on_next(211, 6.0),
        on_next(212, 12.0),
        on_next(213, 18.0),
        on_next(214, 18.0),  # a duplicate total adds nothing
        on_next(221, 12.0),  # samples leave the window one by one ...
        on_next(222, 6.0),
        on_next(223, 0.0),  # ... down to 0 once billing stopped
    ]


def test_billing_rate_ignores_a_lower_total() -> None:
    scheduler = TestScheduler()
    totals = scheduler.create_hot_observable(on_next(210, 5), on_next(211, 4), on_next(212, 6))
    result = scheduler.start(lambda: totals.pipe(rto.billing_rate(60)))
    assert result.messages == [
        on_next(210, 0.0),
        on_next(211, 0.0),
        on_next(212, 1.0),
        on_next(272, 0.0),
    ]


def test_billing_rate_after_billed_seconds_counts_reconnects() -> None:
    scheduler = TestScheduler()
    ticks = scheduler.create_hot_observable(
        on_next(201, T(4)), on_next(202, T(5)), on_next(203, T(1)), on_completed(204)
    )
    result = scheduler.start(lambda: ticks.pipe(rto.billed_seconds(), rto.billing_rate(30)))
    assert result.messages == [
        on_next(201, 0.0),
        on_next(202, 2.0),
        on_next(203, 4.0),
        on_completed(204),
    ]


@pytest.mark.parametrize("bad", [0, -1.0])
def test_time_operators_reject_a_non_positive_window(bad: float) -> None:
    with pytest.raises(rt.ConfigError):
        rto.billing_rate(bad)
    with pytest.raises(rt.ConfigError):
        rto.stall_detector(bad)
