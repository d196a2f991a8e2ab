"""budget_alert and budget_guard in virtual time."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from reactivex.testing import ReactiveTest, TestScheduler

import rxrealtime as rt
from rxrealtime import operators as rto
from rxrealtime.operators import BudgetAlert, BudgetExceeded

on_next, on_completed = ReactiveTest.on_next, ReactiveTest.on_completed


def alerts(operator, *records):  # type: ignore[no-untyped-def]
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(*records)
    return scheduler.start(lambda: source.pipe(operator)).messages


def test_budget_alert_fires_once_per_threshold_in_order() -> None:
    messages = alerts(
        rto.budget_alert(limit_s=10),
        *[on_next(200 + s, s) for s in range(1, 13)],
        on_completed(300),
    )
    assert messages == [
        on_next(205, BudgetAlert(threshold=0.5, billed_s=5, limit_s=10)),
        on_next(208, BudgetAlert(threshold=0.8, billed_s=8, limit_s=10)),
        on_next(210, BudgetAlert(threshold=1.0, billed_s=10, limit_s=10)),
        on_completed(300),
    ]


def test_budget_alert_never_fires_twice_for_duplicates_or_a_drop() -> None:
    messages = alerts(
        rto.budget_alert(limit_s=10, warn_at=(0.5,)),
        on_next(210, 5),
        on_next(211, 5),
        on_next(220, 2),
        on_next(230, 6),
    )
    assert messages == [on_next(210, BudgetAlert(threshold=0.5, billed_s=5, limit_s=10))]


def test_budget_alert_emits_every_threshold_a_jump_crosses_lowest_first() -> None:
    messages = alerts(rto.budget_alert(limit_s=10), on_next(210, 1), on_next(220, 9))
    assert [(m.time, m.value.value.threshold) for m in messages] == [(220, 0.5), (220, 0.8)]


def test_budget_alert_on_cost_is_exact_with_decimal() -> None:
    # 0.1 * 3 reaches 0.3 exactly (with floats, 0.1 * 3 > 0.3 and 0.1 * 2 ...)
    messages = alerts(
        rto.budget_alert(limit_cost="0.3", warn_at=(1.0,), rate_per_second=0.1),
        on_next(210, 2),
        on_next(220, 3),
    )
    assert messages == [
        on_next(
            220,
            BudgetAlert(threshold=1.0, billed_s=3, cost=Decimal("0.3"), limit_cost=Decimal("0.3")),
        )
    ]


def test_budget_alert_with_both_limits_fires_on_whichever_comes_first() -> None:
    messages = alerts(
        rto.budget_alert(limit_s=100, limit_cost=1, warn_at=(0.5,), rate_per_second="0.1"),
        on_next(210, 4),
        on_next(220, 5),
    )
    assert messages == [
        on_next(
            220,
            BudgetAlert(
                threshold=0.5, billed_s=5, cost=Decimal("0.5"), limit_s=100, limit_cost=Decimal(1)
            ),
        )
    ]


def test_budget_alert_end_to_end_after_billed_seconds_across_a_reconnect() -> None:
    scheduler = TestScheduler()
    ticks = scheduler.create_hot_observable(
        on_next(210, rt.protocol.GenerationTick(3)),
        on_next(220, rt.protocol.GenerationTick(1)),
        on_next(230, rt.protocol.GenerationTick(2)),
    )
    result = scheduler.start(
        lambda: ticks.pipe(rto.billed_seconds(), rto.budget_alert(limit_s=5, warn_at=(1.0,)))
    )
    assert result.messages == [on_next(230, BudgetAlert(threshold=1.0, billed_s=5, limit_s=5))]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"limit_s": 0},
        {"limit_s": 10, "warn_at": ()},
        {"limit_s": 10, "warn_at": (0.0, 1.0)},
        {"limit_cost": 5},  # no price
        {"limit_cost": -1, "rate_per_second": 1},
    ],
)
def test_budget_alert_rejects_bad_limits_at_the_call(kwargs: dict[str, object]) -> None:
    with pytest.raises(rt.ConfigError):
        rto.budget_alert(**kwargs)  # type: ignore[arg-type]


class DisconnectRecorder:
    """Stands in for a Session's ``disconnect()``: the guard's only contact with it."""

    def __init__(self) -> None:
        self.calls = 0

    async def disconnect(self) -> None:
        self.calls += 1


async def test_budget_guard_emits_once_completes_and_disconnects_at_the_limit() -> None:
    scheduler = TestScheduler()
    session = DisconnectRecorder()
    source = scheduler.create_hot_observable(
        on_next(210, 1), on_next(220, 2), on_next(230, 3), on_next(240, 4)
    )
    result = scheduler.start(lambda: source.pipe(rto.budget_guard(session, limit_s=3)))
    assert result.messages == [
        on_next(230, BudgetExceeded(billed_s=3, limit_s=3)),
        on_completed(230),
    ]
    assert source.subscriptions[0].unsubscribe == 230  # stops listening at once
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert session.calls == 1


async def test_budget_guard_on_cost_reports_the_cost() -> None:
    scheduler = TestScheduler()
    session = DisconnectRecorder()
    source = scheduler.create_hot_observable(on_next(210, 19), on_next(220, 21))
    guard = rto.budget_guard(session, limit_cost="2", prices={"lucy-2.6": "0.1"}, model="lucy-2.6")
    result = scheduler.start(lambda: source.pipe(guard))
    assert result.messages == [
        on_next(220, BudgetExceeded(billed_s=21, cost=Decimal("2.1"), limit_cost=Decimal("2"))),
        on_completed(220),
    ]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert session.calls == 1


async def test_budget_guard_on_cost_at_the_fast_tier_stops_twice_as_soon() -> None:
    scheduler = TestScheduler()
    session = DisconnectRecorder()
    source = scheduler.create_hot_observable(on_next(210, 9), on_next(220, 10), on_next(230, 20))
    prices = {"lucy-2.6": "0.1"}
    guard = rto.budget_guard(session, limit_cost="2", prices=prices, model="lucy-2.6", tier="fast")
    result = scheduler.start(lambda: source.pipe(guard))
    assert result.messages == [  # 10 fast seconds at 2 x 0.1 reach the 2 of the budget
        on_next(220, BudgetExceeded(billed_s=10, cost=Decimal("2.0"), limit_cost=Decimal("2"))),
        on_completed(220),
    ]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert session.calls == 1


def test_budget_alert_on_cost_prices_the_tier() -> None:
    standard = alerts(
        rto.budget_alert(limit_cost="10", rate_per_second="0.5", warn_at=(0.5, 1.0)),
        on_next(210, 10), on_next(220, 20),
    )  # fmt: skip
    fast = alerts(
        rto.budget_alert(limit_cost="10", rate_per_second="0.5", warn_at=(0.5, 1.0),
                         tier="fast"),
        on_next(210, 10), on_next(220, 20),
    )  # fmt: skip
    assert [(m.time, m.value.value.threshold, m.value.value.cost) for m in standard] == [
        (210, 0.5, Decimal("5.0")), (220, 1.0, Decimal("10.0")),
    ]  # fmt: skip
    assert [(m.time, m.value.value.threshold, m.value.value.cost) for m in fast] == [
        (210, 0.5, Decimal("10.0")), (210, 1.0, Decimal("10.0")),
    ]  # fmt: skip


async def test_budget_guard_below_the_limit_does_not_disconnect() -> None:
    scheduler = TestScheduler()
    session = DisconnectRecorder()
    source = scheduler.create_hot_observable(on_next(210, 1), on_completed(250))
    result = scheduler.start(lambda: source.pipe(rto.budget_guard(session, limit_s=3)))
    assert result.messages == [on_completed(250)]
    await asyncio.sleep(0)
    assert session.calls == 0
