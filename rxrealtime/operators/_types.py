"""The typed values the operators emit: frozen, hashable, cheap to compare in tests."""

from __future__ import annotations

from decimal import Decimal

import msgspec

__all__ = ["BudgetAlert", "BudgetExceeded", "Stall"]


class BudgetAlert(msgspec.Struct, frozen=True, gc=False):
    """A budget threshold (a fraction of the limit) was crossed, once per threshold."""

    threshold: float
    billed_s: int
    cost: Decimal | None = None
    limit_s: int | None = None
    limit_cost: Decimal | None = None


class BudgetExceeded(msgspec.Struct, frozen=True, gc=False):
    """``budget_guard`` reached its limit and is disconnecting the session."""

    billed_s: int
    cost: Decimal | None = None
    limit_s: int | None = None
    limit_cost: Decimal | None = None


class Stall(msgspec.Struct, frozen=True, gc=False):
    """The session was generating but no tick arrived for ``silent_s`` seconds."""

    silent_s: float
    last_seconds: int | None = None
