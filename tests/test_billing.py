"""SessionBilling: the public billed-seconds total of a session, driven by two subjects."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from reactivex.disposable import CompositeDisposable
from reactivex.subject import Subject

from rxrealtime import protocol as p
from rxrealtime.billing import BilledTick, BillingClock, SessionBilling, resolve_rate
from rxrealtime.exceptions import ConfigError


class FakeSession:
    """Anything with the two observables is enough: no socket, no Session."""

    def __init__(self) -> None:
        self.session_started: Subject[Any] = Subject()
        self.generation_ticks: Subject[Any] = Subject()

    def ticks(self, *seconds: int) -> None:
        for s in seconds:
            self.generation_ticks.on_next(p.GenerationTick(seconds=s))


def test_totals_carry_across_a_reset_on_session_started() -> None:
    session = FakeSession()
    billing = SessionBilling(session)
    session.session_started.on_next("sid-a")
    session.ticks(1, 2, 3)
    session.session_started.on_next("sid-b")  # reconnect: the new server session restarts
    session.ticks(1, 2)
    assert billing.total == 5
    assert billing.clock.total == 5


def test_a_new_session_whose_first_tick_is_not_lower_still_counts_in_full() -> None:
    # Without the reset, 3 -> 4 would look like one more second; it is a new session's 4.
    session = FakeSession()
    billing = SessionBilling(session)
    session.ticks(3)
    session.session_started.on_next("sid-b")
    session.ticks(4)
    assert billing.total == 7


def test_duplicate_and_late_ticks_bill_nothing_but_are_reported() -> None:
    session = FakeSession()
    seen: list[BilledTick] = []
    billing = SessionBilling(session, on_billed=seen.append)
    session.ticks(1, 3, 3, 2, 4)  # a duplicate 3, then a late 2 of the same server session
    assert [(b.delta, b.total) for b in seen] == [(1, 1), (2, 3), (0, 3), (0, 3), (1, 4)]
    assert seen[3].tick == p.GenerationTick(seconds=2)
    assert billing.total == 4


def test_a_reset_announced_twice_does_not_double_count() -> None:
    session = FakeSession()
    billing = SessionBilling(session)
    session.ticks(5)
    session.session_started.on_next("sid-b")
    session.session_started.on_next("sid-b")
    session.ticks(2)
    assert billing.total == 7


def test_dispose_stops_counting_and_keeps_the_total() -> None:
    session = FakeSession()
    seen: list[BilledTick] = []
    billing = SessionBilling(session, on_billed=seen.append)
    session.ticks(2)
    billing.dispose()
    billing.dispose()  # idempotent
    session.session_started.on_next("sid-b")
    session.ticks(9)
    assert billing.total == 2 and billing.disposed and len(seen) == 1


def test_it_is_a_disposable_and_a_context_manager() -> None:
    session = FakeSession()
    with SessionBilling(session) as billing:
        session.ticks(1)
    session.ticks(5)
    assert billing.total == 1
    other = SessionBilling(session)
    CompositeDisposable(other).dispose()
    assert other.disposed


def test_cost_is_exact_decimal_money() -> None:
    session = FakeSession()
    assert SessionBilling(session).cost is None
    billing = SessionBilling(session, rate=0.1)  # a float goes through str: 0.1 exactly
    session.ticks(3)
    assert billing.cost == Decimal("0.3")
    with pytest.raises(ConfigError):
        SessionBilling(session, rate=-1)


def test_ints_are_ticks_too_and_anything_else_is_a_type_error() -> None:
    session = FakeSession()
    billing = SessionBilling(session)
    session.generation_ticks.on_next(4)
    assert billing.total == 4
    with pytest.raises(TypeError, match="expected a GenerationTick"):
        session.generation_ticks.on_next("four")
    assert billing.total == 4


def test_the_clock_without_resets_takes_a_drop_for_a_reconnect() -> None:
    clock = BillingClock()  # what billed_seconds() uses when no reset stream is given
    assert [clock.feed(s) for s in (2, 5, 1, 3)] == [2, 3, 1, 2]
    assert clock.total == 8


def test_resolve_rate_prices_a_model_from_a_table() -> None:
    assert resolve_rate(None, {"mirage_v2": "0.01"}, "mirage_v2") == Decimal("0.01")
    assert resolve_rate(None) is None
    with pytest.raises(ConfigError, match="no price for model"):
        resolve_rate(None, {"mirage": 1}, "mirage_v2")
