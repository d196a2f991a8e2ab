"""SessionBilling: the public billed-seconds total of a session, driven by two subjects."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from reactivex.disposable import CompositeDisposable
from reactivex.subject import Subject

from rxrealtime import models
from rxrealtime import protocol as p
from rxrealtime.billing import (
    SPEED_MULTIPLIERS,
    STANDARD,
    BilledTick,
    BillingClock,
    SessionBilling,
    price_key,
    resolve_rate,
    tier_of,
)
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
    assert resolve_rate(None, {"lucy-2.6": "0.01"}, "lucy-2.6") == Decimal("0.01")
    assert resolve_rate(None) is None
    with pytest.raises(ConfigError, match="no price for model"):
        resolve_rate(None, {"lucy-2.1": 1}, "lucy-2.6")


def test_a_fast_second_costs_twice_the_standard_price_unless_priced_itself() -> None:
    prices = {"lucy-2.6": "0.01", "lucy-vton-3.6": "0.02", "lucy-vton-3.6:fast": "0.03"}
    assert SPEED_MULTIPLIERS == {"standard": 1, "fast": 2}
    assert resolve_rate(None, prices, "lucy-2.6", "fast") == Decimal("0.02")  # 2x
    assert resolve_rate(None, prices, "lucy-2.6", None) == Decimal("0.01")
    assert resolve_rate(None, prices, "lucy-2.6", "standard") == Decimal("0.01")
    assert resolve_rate(None, prices, "lucy-vton-3.6", "fast") == Decimal("0.03")  # its own
    assert resolve_rate(None, prices, "lucy-vton-3.6") == Decimal("0.02")
    # A flat rate is a standard rate: a tier multiplies it the same way.
    assert resolve_rate("0.01", tier="fast") == Decimal("0.02")
    assert resolve_rate(0.1, tier="standard") == Decimal("0.1")
    # A table may price only a tier (then the standard tier has no price), or name the
    # standard tier explicitly.
    assert resolve_rate(None, {"m:fast": 5}, "m", "fast") == 5
    assert resolve_rate(None, {"m:standard": 1}, "m", "fast") == 2
    with pytest.raises(ConfigError, match="no price for model 'm'"):
        resolve_rate(None, {"m:fast": 5}, "m")


def test_a_tier_without_a_multiplier_needs_a_price_of_its_own() -> None:
    with pytest.raises(ConfigError, match=r"no price for tier 'turbo' of lucy-2\.6"):
        resolve_rate(None, {"lucy-2.6": 1}, "lucy-2.6", "turbo")
    with pytest.raises(ConfigError, match="no price for tier 'turbo' of a flat rate"):
        resolve_rate(1, tier="turbo")
    assert resolve_rate(None, {"lucy-2.6:turbo": 7}, "lucy-2.6", "turbo") == 7


def test_price_keys_and_the_tier_of_a_source() -> None:
    assert price_key("lucy-2.6") == price_key("lucy-2.6", "standard") == "lucy-2.6"
    assert price_key("lucy-2.6", "fast") == "lucy-2.6:fast"
    assert tier_of(object()) == "standard"  # a source that does not say
    assert tier_of(SimpleNamespace(tier="fast")) == "fast"
    assert STANDARD == models.STANDARD  # billing sits below models: the same word twice
