"""Billing in one place: the clock that totals ticks, prices as ``Decimal``, and
:class:`SessionBilling`, which keeps that total for a live session.

Why a clock is needed at all: a ``generation_tick`` carries the *cumulative* billed
seconds of one **server session**, not a delta, and every reconnect (or any new
connection) is a new server session whose count restarts at 0 (docs/protocol.md).
``session_started`` announces each new server session. Summing ``seconds`` is therefore
wrong, and so is taking the last value: :class:`BillingClock` turns the ticks into a
total for the client session. The rules, in one place:

* ``seconds`` higher than the last value of the current server session: the difference
  is billed.
* the same value again (a duplicate tick): 0 is billed.
* a lower value, with **no reset signal** wired in (``resets_known=False``): a drop is
  the only evidence of a reconnect, so it starts a new server session and the whole
  value is billed. A tick that merely arrived out of order is indistinguishable from a
  reconnect in that mode and is billed as one (over-counting); pass a reset stream when
  input may be reordered.
* a lower value **with** a reset signal wired in (``resets_known=True``): new server
  sessions are announced by :meth:`BillingClock.reset`, so a drop inside one server
  session can only be a late, out-of-order tick: it bills 0 and does not move the
  high-water mark.

Only :meth:`BillingClock.reset` starts a new server session in the second mode; it is
idempotent until the next tick, so a reset announced twice (``reconnecting`` then
``session_started``) does not double count.

Prices know the speed tier. The service bills a ``speed="fast"`` session at twice the
standard rate of its model (the vendor's rule, :data:`SPEED_MULTIPLIERS`), so a price
table is keyed by model and, where a tier has a price of its own, by ``"model:tier"``::

    prices = {"lucy-2.6": "0.01", "lucy-2.1": "0.008", "lucy-vton-3.6:fast": "0.025"}

:func:`resolve_rate` picks ``"model:tier"`` when the table has it, else the model's
standard price times the tier's multiplier (``lucy-2.6`` fast: 0.02 above), and a flat
rate is the standard price, multiplied the same way. String keys, rather than
``(model, tier)`` tuples, because price tables come from configuration, the command line
(``--price lucy-2.6:fast=0.03``) and JSON, which have no tuples. The tier of a session
is ``session.tier`` (:func:`tier_of`): what it asked for with ``speed=`` if its model
offers it, else ``standard``, because the service ignores a tier the model lacks.

This module sits below :mod:`rxrealtime.operators` (whose billing operators use the same
clock) and below the session: it imports only :mod:`rxrealtime.exceptions` and reactivex.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable

from .exceptions import ConfigError

__all__ = [
    "SPEED_MULTIPLIERS",
    "STANDARD",
    "BilledTick",
    "BillingClock",
    "BillingSource",
    "Rate",
    "SessionBilling",
    "price_key",
    "resolve_rate",
    "seconds_of",
    "tier_of",
    "to_decimal",
]


# -- the clock ---------------------------------------------------------------------


def seconds_of(value: Any) -> int:
    """The cumulative seconds of a ``GenerationTick``/``GenerationEnded`` or a bare int."""
    seconds = value if isinstance(value, int) else getattr(value, "seconds", None)
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise TypeError(f"expected a GenerationTick or an int of seconds, got {value!r}")
    return seconds


class BillingClock:
    """Total billed seconds across server sessions; see the module docstring."""

    __slots__ = ("_last", "_offset", "resets_known")

    def __init__(self, resets_known: bool = False) -> None:
        self.resets_known = resets_known
        self._offset = 0  # billed by the previous server sessions
        self._last = 0  # high-water mark of the current server session

    def __repr__(self) -> str:
        return f"<BillingClock total={self.total} resets_known={self.resets_known}>"

    @property
    def total(self) -> int:
        """Billed seconds of every server session fed so far."""
        return self._offset + self._last

    def feed(self, seconds: int) -> int:
        """Account for one tick; returns the seconds it bills (0 or more)."""
        if seconds < 0:
            return 0  # nonsense from a broken server; billing never goes backwards
        if seconds >= self._last:
            delta = seconds - self._last
            self._last = seconds
            return delta
        if self.resets_known:
            return 0  # a late tick of the current server session
        self._offset += self._last
        self._last = seconds
        return seconds

    def reset(self) -> None:
        """A new server session starts: its ticks count from 0 on top of the total."""
        self._offset += self._last
        self._last = 0


# -- money ---------------------------------------------------------------------------

Rate = Decimal | int | str | float
"""A price per billed second as users write it; money never goes through binary floats."""


def to_decimal(value: Rate, what: str = "rate") -> Decimal:
    """``value`` as a Decimal; a float goes through ``str`` so 0.1 stays 0.1."""
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be a number, not a bool")
    try:
        result = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, got {value!r}") from None
    if not result.is_finite() or result < 0:
        raise ConfigError(f"{what} must be a finite number >= 0, got {value!r}")
    return result


STANDARD = "standard"
"""The tier of a session that asked for no speed (``rxrealtime.models.STANDARD``)."""

SPEED_MULTIPLIERS: dict[str, int] = {STANDARD: 1, "fast": 2}
"""What a speed tier costs, in standard seconds: the service bills ``fast`` at twice the
standard rate. A tier missing here needs a ``"model:tier"`` price of its own."""


def price_key(model: str, tier: str | None = None) -> str:
    """The key of a tier's own price in a price table: ``"lucy-2.6:fast"`` (the model
    alone for the standard tier)."""
    return model if not tier or tier == STANDARD else f"{model}:{tier}"


def tier_of(source: object) -> str:
    """The speed tier a session (or a replay, or anything with a ``tier``) is billed at;
    :data:`STANDARD` for a source that does not say."""
    tier = getattr(source, "tier", None)
    return tier if isinstance(tier, str) and tier else STANDARD


def _multiplier(tier: str, what: str) -> int:
    try:
        return SPEED_MULTIPLIERS[tier]
    except KeyError:
        known = ", ".join(SPEED_MULTIPLIERS)
        raise ConfigError(
            f"no price for tier {tier!r} of {what}: give it a price of its own "
            f"(tiers with a known multiplier: {known})"
        ) from None


def resolve_rate(
    rate_per_second: Rate | None,
    prices: Mapping[str, Rate] | None = None,
    model: str | None = None,
    tier: str | None = None,
) -> Decimal | None:
    """The price of one billed second: a flat rate, or a model's entry of a price table,
    at the speed ``tier`` (``None``: standard).

    A table's ``"model:tier"`` entry wins; else the model's standard price (its own entry,
    or ``"model:standard"``) times :data:`SPEED_MULTIPLIERS` ``[tier]``. A flat rate is a
    standard rate and is multiplied the same way. Raises
    :class:`~rxrealtime.ConfigError` for a model or a tier the prices cannot price.
    """
    tier = tier or STANDARD
    if prices is not None:
        if rate_per_second is not None:
            raise ConfigError("pass rate_per_second or prices, not both")
        if model is None:
            raise ConfigError("a price table needs model= to pick the price")
        own = price_key(model, tier)
        if own in prices:
            return to_decimal(prices[own], f"price of {own}")
        standard = model if model in prices else f"{model}:{STANDARD}"
        if standard not in prices:
            known = ", ".join(sorted(prices)) or "none"
            raise ConfigError(f"no price for model {model!r} (priced: {known})")
        base = to_decimal(prices[standard], f"price of {standard}")
        return base * _multiplier(tier, model) if tier != STANDARD else base
    if rate_per_second is None:
        return None
    rate = to_decimal(rate_per_second, "rate_per_second")
    return rate * _multiplier(tier, "a flat rate") if tier != STANDARD else rate


# -- a live session's total ------------------------------------------------------------


class BillingSource(Protocol):
    """What :class:`SessionBilling` needs: a :class:`~rxrealtime.Session`, a view-only
    subscriber, or anything else with these two observables (two subjects in a test).
    """

    @property
    def session_started(self) -> Observable[Any]:
        """One value per new server session (its ticks restart at 0)."""
        ...

    @property
    def generation_ticks(self) -> Observable[Any]:
        """Ticks (``GenerationTick`` or int): cumulative seconds of the current server session."""
        ...


@dataclass(frozen=True, slots=True)
class BilledTick:
    """What one tick did to the bill, as :class:`SessionBilling` reports it."""

    tick: Any
    """The tick as received (a ``GenerationTick``, or an int)."""
    delta: int
    """Seconds this tick billed: 0 for a duplicate or a late, out-of-order tick."""
    total: int
    """Billed seconds of the client session so far, across reconnects, this tick included."""


class SessionBilling(abc.DisposableBase):
    """The billed-seconds total of one client session, kept from its streams.

    Subscribes at once: ``session_started`` resets the clock (a new server session, whose
    ticks restart at 0) and each ``generation_ticks`` value is fed to it. Because resets
    are announced, a late tick of the current server session bills 0 instead of being
    mistaken for a reconnect. Ticks of a server session that was already running when
    tracking began count from 0, i.e. what that server session billed so far is included.

    ``on_billed`` is called after every tick, once the total includes it, with a
    :class:`BilledTick` (``delta`` is 0 for a duplicate or late tick, so a caller that
    republishes per tick still hears of it). ``rate`` (a price per second) makes
    :attr:`cost` a ``Decimal``. :meth:`dispose` (or leaving a ``with`` block) stops
    counting; the total then stays as it is. The object is a reactivex disposable, so it
    can join a ``CompositeDisposable``.
    """

    def __init__(
        self,
        session: BillingSource,
        *,
        rate: Rate | None = None,
        on_billed: Callable[[BilledTick], Any] | None = None,
    ) -> None:
        self.rate: Decimal | None = None if rate is None else to_decimal(rate)
        self.clock = BillingClock(resets_known=True)
        self._on_billed = on_billed
        self._subscriptions = CompositeDisposable()
        self._subscriptions.add(session.session_started.subscribe(self._on_started))
        self._subscriptions.add(session.generation_ticks.subscribe(self._on_tick))

    def __repr__(self) -> str:
        state = "disposed" if self.disposed else "tracking"
        return f"<SessionBilling total={self.total} {state}>"

    @property
    def total(self) -> int:
        """Billed seconds across every server session seen so far."""
        return self.clock.total

    @property
    def cost(self) -> Decimal | None:
        """``rate * total``, or ``None`` without a rate."""
        return None if self.rate is None else self.rate * self.clock.total

    @property
    def disposed(self) -> bool:
        """True once :meth:`dispose` was called: the total no longer changes."""
        return self._subscriptions.is_disposed

    def dispose(self) -> None:
        """Stop counting (idempotent); :attr:`total` keeps its last value."""
        self._subscriptions.dispose()

    def __enter__(self) -> SessionBilling:
        return self

    def _on_started(self, _: Any) -> None:
        self.clock.reset()

    def _on_tick(self, tick: Any) -> None:
        delta = self.clock.feed(seconds_of(tick))
        if self._on_billed is not None:
            self._on_billed(BilledTick(tick, delta, self.clock.total))
