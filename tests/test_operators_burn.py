"""burn_rate, projection and idle_guard in virtual time: exact times, no sleeps."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from reactivex.testing import ReactiveTest, TestScheduler

import rxrealtime as rt
from rxrealtime import operators as rto
from rxrealtime.operators import BurnRate, IdleStop, Projection
from rxrealtime.protocol import GenerationTick as T

on_next, on_completed = ReactiveTest.on_next, ReactiveTest.on_completed


def values(result: Any) -> list[tuple[float, Any]]:
    return [(m.time, m.value.value) for m in result.messages if m.value.kind == "N"]


def test_burn_rate_is_billing_rate_with_its_cost_per_minute() -> None:
    scheduler = TestScheduler()
    billed = scheduler.create_hot_observable(
        on_next(210, 0), on_next(220, 5), on_next(230, 10), on_completed(300)
    )
    result = scheduler.start(
        lambda: billed.pipe(rto.burn_rate(30, rate_per_second="0.01", scheduler=scheduler))
    )
    assert values(result) == [
        (210, BurnRate(0.0, Decimal(0), 30.0)),
        (220, BurnRate(30.0, Decimal("0.3"), 30.0)),  # 5 s in the 10 s seen so far
        (230, BurnRate(30.0, Decimal("0.3"), 30.0)),
        (250, BurnRate(10.0, Decimal("0.1"), 30.0)),  # the 5 s of 220 left the window
        (260, BurnRate(0.0, Decimal(0), 30.0)),
    ]
    assert result.messages[-1] == on_completed(300)


def test_burn_rate_and_projection_price_the_speed_tier() -> None:
    prices = {"lucy-2.6": "0.01", "lucy-vton-3.6:fast": "0.05", "lucy-vton-3.6": "0.02"}

    def burn_at_220(**price: Any) -> Decimal | None:
        scheduler = TestScheduler()
        billed = scheduler.create_hot_observable(on_next(210, 0), on_next(220, 5))
        op = rto.burn_rate(30, scheduler=scheduler, **price)
        got: BurnRate = dict(values(scheduler.start(lambda: billed.pipe(op))))[220]
        assert got.seconds_per_min == 30.0  # the tier changes the money, not the seconds
        return got.cost_per_min

    assert burn_at_220(prices=prices, model="lucy-2.6") == Decimal("0.3")
    assert burn_at_220(prices=prices, model="lucy-2.6", tier="fast") == Decimal("0.6")
    assert burn_at_220(prices=prices, model="lucy-vton-3.6", tier="fast") == Decimal("1.5")
    assert burn_at_220(rate_per_second="0.01", tier="fast") == Decimal("0.6")

    scheduler = TestScheduler()
    billed = scheduler.create_hot_observable(on_next(210, 0), on_next(220, 20))
    op = rto.projection(limit_cost="1", rate_per_second="0.01", tier="fast", window_s=60,
                        scheduler=scheduler)  # fmt: skip
    last: Projection = values(scheduler.start(lambda: billed.pipe(op)))[1][1]
    assert last.cost == Decimal("0.40")  # 20 fast seconds at 2 x 0.01
    assert last.remaining_s == 30.0  # 0.60 left at 0.02 a second


def test_burn_rate_without_a_price_has_no_cost_and_defaults_to_a_minute() -> None:
    scheduler = TestScheduler()
    billed = scheduler.create_hot_observable(on_next(210, 0), on_next(240, 30))
    result = scheduler.start(lambda: billed.pipe(rto.burn_rate(scheduler=scheduler)))
    assert values(result) == [(210, BurnRate(0.0)), (240, BurnRate(60.0)), (300, BurnRate(0.0))]


def test_projection_counts_down_to_the_budget() -> None:
    scheduler = TestScheduler()
    # 1 billed second per virtual second from 201 on; budget 100 s
    billed = scheduler.create_hot_observable(*[on_next(200 + s, s) for s in range(1, 101)])
    result = scheduler.start(
        lambda: billed.pipe(rto.projection(limit_s=100, window_s=10, scheduler=scheduler))
    )
    got = dict(values(result))
    at_250: Projection = got[250]
    assert at_250.billed_s == 50 and at_250.seconds_per_min == 60.0
    assert at_250.next_hour_s == 3600.0
    assert at_250.used == 0.5 and at_250.remaining_s == 50.0
    assert at_250.time_to_limit_s == pytest.approx(50.0)
    assert at_250.cost is None and at_250.limit_s == 100
    assert got[300].used == 1.0 and got[300].remaining_s == 0 and got[300].time_to_limit_s == 0
    # billing stopped: the burn decays to 0, and with it the hour's projection
    assert got[310].seconds_per_min == 0.0 and got[310].next_hour_s == 0.0


def test_projection_with_a_money_limit_uses_the_first_limit_reached() -> None:
    scheduler = TestScheduler()
    billed = scheduler.create_hot_observable(on_next(210, 0), on_next(220, 20))
    operator = rto.projection(
        limit_s=1000, limit_cost="1", rate_per_second="0.02", window_s=60, scheduler=scheduler
    )
    result = scheduler.start(lambda: billed.pipe(operator))
    last: Projection = values(result)[1][1]
    assert last.cost == Decimal("0.40") and last.limit_cost == Decimal(1)
    assert last.used == pytest.approx(0.4)  # money: 0.40 of 1 (seconds: 20 of 1000)
    assert last.remaining_s == 30.0  # 0.60 left at 0.02/s
    assert last.seconds_per_min == 120.0  # 20 s in the 10 s seen so far
    assert last.time_to_limit_s == pytest.approx(15.0)
    assert last.cost_per_min == Decimal("2.4") and last.next_hour_cost == Decimal("144")


def test_projection_without_a_limit_has_no_budget_fields() -> None:
    scheduler = TestScheduler()
    billed = scheduler.create_hot_observable(on_next(210, 4))
    result = scheduler.start(lambda: billed.pipe(rto.projection(scheduler=scheduler)))
    only: Projection = values(result)[0][1]
    assert only.billed_s == 4 and only.used is None and only.time_to_limit_s is None


def test_projection_and_burn_rate_refuse_bad_arguments() -> None:
    with pytest.raises(rt.ConfigError):
        rto.projection(limit_cost="1")  # no price
    with pytest.raises(rt.ConfigError):
        rto.projection(limit_s=0)
    with pytest.raises(rt.ConfigError):
        rto.burn_rate(0)
    with pytest.raises(rt.ConfigError):
        rto.idle_guard(Frames(), 0)


class Frames:
    """Stands in for a session: a frames stream with a subscriber count, disconnect()."""

    def __init__(self) -> None:
        self.frames = rt.HotStream[Any]("frames")
        self.calls = 0

    async def disconnect(self) -> None:
        self.calls += 1


def run_guard(build: Any) -> tuple[list[tuple[float, Any]], Frames]:
    async def scenario() -> tuple[list[tuple[float, Any]], Frames]:
        scheduler = TestScheduler()
        session = Frames()
        messages = scheduler.start(lambda: build(scheduler, session)).messages
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return [(m.time, m.value.value if m.value.kind == "N" else "|") for m in messages], (
            session
        )

    return asyncio.run(scenario())


def ticks_every_second(scheduler: TestScheduler, start: int, end: int) -> Any:
    return scheduler.create_hot_observable(*[on_next(t, T(t - start)) for t in range(start, end)])


def test_idle_guard_stops_a_session_nobody_changes_or_watches() -> None:
    def build(scheduler: TestScheduler, session: Frames) -> Any:
        prompts = scheduler.create_hot_observable(on_next(220, "ack"))
        ticks = ticks_every_second(scheduler, 201, 400)
        return ticks.pipe(rto.idle_guard(session, 30, activity=prompts, scheduler=scheduler))

    got, session = run_guard(build)
    # idle from the prompt change at 220: stopped at 250, after the ticks of 220..250
    assert got == [(250, IdleStop(idle_s=30.0, ticks=31)), (250, "|")]
    assert session.calls == 1


def test_idle_guard_waits_while_someone_watches_the_video() -> None:
    def build(scheduler: TestScheduler, session: Frames) -> Any:
        internal = session.frames.subscribe(lambda _: None)  # the session's own watcher
        viewer: list[Any] = []
        scheduler.schedule_absolute(
            230, lambda *_: viewer.append(session.frames.subscribe(lambda _: None))
        )
        scheduler.schedule_absolute(260, lambda *_: viewer.pop().dispose())
        scheduler.schedule_absolute(900, lambda *_: internal.dispose())
        ticks = ticks_every_second(scheduler, 201, 400)
        return ticks.pipe(rto.idle_guard(session, 30, scheduler=scheduler))

    got, session = run_guard(build)
    # baseline 1 (at the first tick); the viewer keeps it alive up to its last tick (259)
    assert got == [(289, IdleStop(idle_s=30.0, ticks=30)), (289, "|")]
    assert session.calls == 1


def test_idle_guard_counts_only_time_spent_generating() -> None:
    def build(scheduler: TestScheduler, session: Frames) -> Any:
        states = scheduler.create_hot_observable(
            on_next(201, "generating"), on_next(210, "reconnecting"), on_next(240, "generating")
        )
        return scheduler.create_hot_observable(on_completed(500)).pipe(
            rto.idle_guard(session, 20, states=states, activity=states, scheduler=scheduler)
        )

    got, _ = run_guard(build)
    assert got == [(260, IdleStop(idle_s=20.0)), (260, "|")]


def test_idle_guard_with_a_viewer_count_never_trips_while_watched() -> None:
    def build(scheduler: TestScheduler, session: Frames) -> Any:
        ticks = ticks_every_second(scheduler, 201, 400)
        return ticks.pipe(rto.idle_guard(session, 10, viewers=lambda: 1, scheduler=scheduler))

    got, session = run_guard(build)
    assert got == [] and session.calls == 0


def test_terminal_view_shows_burn_rate_and_budget_in_virtual_time() -> None:
    import io

    from rich.console import Console

    from rxrealtime.dashboards import TerminalDashboard

    scheduler = TestScheduler()
    session = rt.Session("ws://127.0.0.1:9", api_key="k", model="lucy-2.6")
    view = TerminalDashboard(
        session, scheduler=scheduler, rate_per_second="0.01", budget_s=100, burn_window_s=10
    )
    for second in range(1, 91):  # one billed second per second
        scheduler.schedule_absolute(
            second, lambda *_, s=second: session.generation_ticks.emit(T(s))
        )

    def text() -> str:
        console = Console(file=io.StringIO(), width=120, color_system=None)
        console.print(view.render())
        return console.file.getvalue()  # type: ignore[attr-defined]

    scheduler.advance_to(50.5)
    assert "60.0 s/min (0.6/min) · next hour 3600 s, 36" in text()
    assert "50% · 50 s left · ~50 s" in text()
    scheduler.advance_to(120)
    assert "0.0 s/min" in text() and "90% · 10 s left · not burning" in text()
    view.stop()
