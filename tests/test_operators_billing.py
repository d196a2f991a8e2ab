"""billed_seconds, tick_deltas and cost in virtual time (marble style, exact records)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from reactivex.testing import ReactiveTest, TestScheduler

import rxrealtime as rt
from rxrealtime import operators as rto
from rxrealtime.protocol import GenerationTick

on_next, on_completed = ReactiveTest.on_next, ReactiveTest.on_completed


def T(seconds: int) -> GenerationTick:
    return GenerationTick(seconds=seconds)


def run(operator, *records, resets=()):  # type: ignore[no-untyped-def]
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(*records)
    reset_source = scheduler.create_hot_observable(*resets) if resets else None
    op = operator(reset_source) if reset_source is not None else operator()
    return scheduler.start(lambda: source.pipe(op)).messages


def test_billed_seconds_is_the_running_total_of_one_server_session() -> None:
    assert run(
        rto.billed_seconds,
        on_next(210, T(1)),
        on_next(220, T(2)),
        on_next(230, T(3)),
        on_completed(240),
    ) == [on_next(210, 1), on_next(220, 2), on_next(230, 3), on_completed(240)]


def test_billed_seconds_ignores_ticks_before_subscription() -> None:
    # hot source: the tick at 150 happens before subscribe (200); the total starts at the
    # first cumulative value seen, which already includes those seconds
    assert run(rto.billed_seconds, on_next(150, T(1)), on_next(210, T(4))) == [on_next(210, 4)]


def test_billed_seconds_adds_the_previous_session_after_a_reconnect() -> None:
    assert run(
        rto.billed_seconds,
        on_next(210, T(1)),
        on_next(220, T(2)),
        on_next(230, T(3)),
        on_next(300, T(1)),
        on_next(310, T(2)),  # new server session restarts at 1
    ) == [on_next(210, 1), on_next(220, 2), on_next(230, 3), on_next(300, 4), on_next(310, 5)]


def test_billed_seconds_handles_a_reconnect_that_restarts_at_zero() -> None:
    assert run(
        rto.billed_seconds,
        on_next(210, T(5)),
        on_next(300, T(0)),
        on_next(310, T(2)),
    ) == [on_next(210, 5), on_next(300, 5), on_next(310, 7)]


def test_billed_seconds_duplicates_add_nothing() -> None:
    assert run(
        rto.billed_seconds,
        on_next(210, T(2)),
        on_next(211, T(2)),
        on_next(212, T(2)),
        on_next(220, T(3)),
    ) == [on_next(210, 2), on_next(211, 2), on_next(212, 2), on_next(220, 3)]


def test_billed_seconds_without_resets_counts_an_out_of_order_tick_as_a_reconnect() -> None:
    # documented: a drop is the only reconnect evidence without `resets`
    assert run(
        rto.billed_seconds,
        on_next(210, T(1)),
        on_next(220, T(3)),
        on_next(221, T(2)),
        on_next(230, T(4)),
    ) == [on_next(210, 1), on_next(220, 3), on_next(221, 5), on_next(230, 7)]


def test_billed_seconds_with_resets_ignores_an_out_of_order_tick() -> None:
    assert run(
        rto.billed_seconds,
        on_next(210, T(1)),
        on_next(220, T(3)),
        on_next(221, T(2)),
        on_next(230, T(4)),
        resets=(on_next(205, "session-a"),),
    ) == [on_next(210, 1), on_next(220, 3), on_next(221, 3), on_next(230, 4)]


def test_billed_seconds_with_resets_counts_a_new_session_even_without_a_drop() -> None:
    # old session ended at 1 s; the new one's first tick is also 1: a drop cannot see it
    messages = run(
        rto.billed_seconds,
        on_next(210, T(1)),
        on_next(300, T(1)),
        on_next(310, T(2)),
        resets=(on_next(205, "a"), on_next(290, "b"), on_next(291, "b-again")),
    )
    assert messages == [on_next(210, 1), on_next(300, 2), on_next(310, 3)]


def test_billed_seconds_without_resets_misses_a_new_session_without_a_drop() -> None:
    # the documented limit of drop detection, pinned so a change of rule is deliberate
    assert run(rto.billed_seconds, on_next(210, T(1)), on_next(300, T(1))) == [
        on_next(210, 1),
        on_next(300, 1),
    ]


def test_billed_seconds_accepts_ints_and_generation_ended() -> None:
    assert run(
        rto.billed_seconds, on_next(210, 2), on_next(220, rt.protocol.GenerationEnded(3, "x"))
    ) == [on_next(210, 2), on_next(220, 3)]


def test_billed_seconds_rejects_values_without_seconds() -> None:
    messages = run(rto.billed_seconds, on_next(210, "nope"))
    assert len(messages) == 1 and isinstance(messages[0].value.exception, TypeError)


def test_tick_deltas_are_seconds_since_the_previous_tick() -> None:
    assert run(
        rto.tick_deltas,
        on_next(210, T(1)),
        on_next(220, T(3)),
        on_next(221, T(3)),  # duplicate: 0
        on_next(300, T(1)),  # reconnect: whole first value
        on_next(310, T(2)),
        on_completed(400),
    ) == [
        on_next(210, 1),
        on_next(220, 2),
        on_next(221, 0),
        on_next(300, 1),
        on_next(310, 1),
        on_completed(400),
    ]


def test_tick_deltas_with_resets_bill_zero_for_a_late_tick() -> None:
    assert run(
        rto.tick_deltas,
        on_next(210, T(2)),
        on_next(220, T(4)),
        on_next(221, T(3)),
        on_next(300, T(1)),
        resets=(on_next(250, "new"),),
    ) == [on_next(210, 2), on_next(220, 2), on_next(221, 0), on_next(300, 1)]


def test_tick_deltas_sum_to_billed_seconds() -> None:
    records = [on_next(200 + i, T(v)) for i, v in enumerate([1, 2, 2, 5, 1, 3, 0, 4, 4, 6], 1)]
    deltas = [m.value.value for m in run(rto.tick_deltas, *records)]
    totals = [m.value.value for m in run(rto.billed_seconds, *records)]
    assert [sum(deltas[: i + 1]) for i in range(len(deltas))] == totals


def test_cost_is_exact_decimal_money() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(on_next(210, 1), on_next(220, 3), on_completed(230))
    result = scheduler.start(lambda: source.pipe(rto.cost(0.1)))
    assert result.messages == [
        on_next(210, Decimal("0.1")),
        on_next(220, Decimal("0.3")),
        on_completed(230),
    ]


def test_cost_uses_the_model_price_from_a_price_table() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(on_next(210, 10))
    prices = {"lucy-2.6": "0.02", "lucy-2.1": "0.05"}
    result = scheduler.start(lambda: source.pipe(rto.cost(prices=prices, model="lucy-2.1")))
    assert result.messages == [on_next(210, Decimal("0.50"))]


@pytest.mark.parametrize(
    ("kwargs", "per_second"),
    [
        ({"prices": {"lucy-2.6": "0.02"}, "model": "lucy-2.6"}, "0.02"),
        ({"prices": {"lucy-2.6": "0.02"}, "model": "lucy-2.6", "tier": "standard"}, "0.02"),
        ({"prices": {"lucy-2.6": "0.02"}, "model": "lucy-2.6", "tier": "fast"}, "0.04"),
        ({"prices": {"lucy-2.6": "0.02", "lucy-2.6:fast": "0.03"}, "model": "lucy-2.6",
          "tier": "fast"}, "0.03"),
        ({"rate_per_second": "0.02", "tier": "fast"}, "0.04"),
        ({"rate_per_second": "0.02", "tier": None}, "0.02"),
    ],
)  # fmt: skip
def test_cost_prices_the_speed_tier(kwargs: dict[str, object], per_second: str) -> None:
    # A fast second costs SPEED_MULTIPLIERS["fast"] (2) standard ones, unless the table
    # prices the tier itself.
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(on_next(210, 1), on_next(220, 10), on_completed(230))
    result = scheduler.start(lambda: source.pipe(rto.cost(**kwargs)))  # type: ignore[arg-type]
    rate = Decimal(per_second)
    assert result.messages == [on_next(210, rate), on_next(220, rate * 10), on_completed(230)]
    assert rto.SPEED_MULTIPLIERS["fast"] == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"rate_per_second": -1},
        {"rate_per_second": "abc"},
        {"prices": {"lucy-2.6": 1}},
        {"prices": {"lucy-2.6": 1}, "model": "other"},
        {"prices": {"lucy-2.6": 1}, "model": "lucy-2.6", "tier": "turbo"},
        {"rate_per_second": 1, "tier": "turbo"},
        {"rate_per_second": 1, "prices": {"m": 1}, "model": "m"},
    ],
)
def test_cost_rejects_a_missing_or_bad_price_at_the_call(kwargs: dict[str, object]) -> None:
    with pytest.raises(rt.ConfigError):
        rto.cost(**kwargs)  # type: ignore[arg-type]
