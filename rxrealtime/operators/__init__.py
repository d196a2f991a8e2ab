"""Billing, budget and liveness operators for session streams, shaped like reactivex's.

Each function returns an operator (``Callable[[Observable], Observable]``) for
``.pipe(...)``; each one's logic is a single ``subscribe`` closure in its own module.
Time-based operators take an optional ``scheduler`` and never sleep: by default they
use the scheduler given at subscribe time, else an ``AsyncIOScheduler`` on the running
loop (pass ``session.scheduler``), so tests drive them with ``TestScheduler``.

Billing input is ``session.generation_ticks`` (``GenerationTick(seconds)``, cumulative
per *server* session; ints work too). Reconnects restart that count at 0; see
:func:`billed_seconds` for how totals stay right, including duplicates and ticks that
arrive out of order::

    ticks = session.generation_ticks
    billed = ticks.pipe(rto.billed_seconds(resets=session.session_started))
    billed.pipe(rto.cost("0.002")).subscribe(print)               # Decimal money
    billed.pipe(rto.cost(prices={"lucy-2.6": "0.002"}, model=session.model.name,
                         tier=session.tier)).subscribe(print)     # fast: 2x the price
    billed.pipe(rto.budget_alert(limit_s=600)).subscribe(print)   # BudgetAlert at 50/80/100 %
    billed.pipe(rto.budget_guard(session, limit_s=900)).subscribe(print)  # disconnects
    ticks.pipe(rto.stall_detector(5.0, states=session.connection_changes,
                                  scheduler=session.scheduler)).subscribe(print)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..quality import ConnectionQuality, QualityThresholds, SessionStats
from ._types import BudgetAlert, BudgetExceeded, Stall

if TYPE_CHECKING:
    from reactivex import Observable, abc

    from ..billing import SPEED_MULTIPLIERS, Rate
    from ._budgetguard import Disconnectable
    from ._burnrate import BurnRate
    from ._idleguard import IdleStop
    from ._projection import Projection

# Each operator's module (and reactivex, ~50 ms of imports here) loads when the operator
# is first called: ``import rxrealtime.operators`` itself costs msgspec and little more.
_LAZY = {"BurnRate": "_burnrate", "IdleStop": "_idleguard", "Projection": "_projection"}

__all__ = [
    "SPEED_MULTIPLIERS",
    "BudgetAlert",
    "BudgetExceeded",
    "BurnRate",
    "IdleStop",
    "Projection",
    "Rate",
    "Stall",
    "billed_seconds",
    "billing_rate",
    "budget_alert",
    "budget_guard",
    "burn_rate",
    "cost",
    "idle_guard",
    "projection",
    "quality",
    "stall_detector",
    "tick_deltas",
]


def billed_seconds(
    resets: Observable[Any] | None = None,
) -> Callable[[Observable[Any]], Observable[int]]:
    """Running total of billed seconds for the client session, across reconnects.

    Emits the total once per input tick (a duplicate tick re-emits the same total).
    Ticks are cumulative per server session:

    * a higher value bills the difference, an equal value (duplicate) bills 0;
    * without ``resets``, a *lower* value means a reconnect (a new server session that
      restarted at 0), so the previous session's last value becomes an offset. A late
      tick that arrived out of order looks the same and is counted as a reconnect:
      a drop is the only signal available;
    * with ``resets`` (any observable; each value announces a new server session, e.g.
      ``session.session_started``), reconnects come from that stream only, and a lower
      value is a late tick of the current server session: it bills 0 and the total
      never goes down. This also catches a new session whose first tick is not below
      the old session's last one, which a drop alone cannot see.
    """
    from ._billedseconds import billed_seconds_

    return billed_seconds_(resets)


def tick_deltas(
    resets: Observable[Any] | None = None,
) -> Callable[[Observable[Any]], Observable[int]]:
    """Seconds billed by each tick (since the previous tick), with the rules of
    :func:`billed_seconds`: duplicates and late ticks are 0; the first tick of a new server
    session bills its whole value. Sums of the deltas equal the running total."""
    from ._tickdeltas import tick_deltas_

    return tick_deltas_(resets)


def cost(
    rate_per_second: Rate | None = None,
    *,
    prices: Mapping[str, Rate] | None = None,
    model: str | None = None,
    tier: str | None = None,
) -> Callable[[Observable[int]], Observable[Decimal]]:
    """Billed seconds (a :func:`billed_seconds` stream) to money as ``Decimal``.

    Give a flat ``rate_per_second`` or a price table ``prices={"lucy-2.6": "0.01"}``
    with the ``model`` to price. ``tier`` is the session's speed tier (``session.tier``;
    ``None``: standard): the service bills ``fast`` at twice the standard rate, so a fast
    second costs the standard price times ``SPEED_MULTIPLIERS["fast"]`` (2), unless the
    table prices the tier itself (``"lucy-2.6:fast"``); a flat rate is multiplied the same
    way. Floats go through ``str`` so ``0.1`` means 0.1 exactly. Raises
    :class:`~rxrealtime.ConfigError` at the call for a missing or bad price.
    """
    from ._cost import cost_

    return cost_(rate_per_second, prices=prices, model=model, tier=tier)


def budget_alert(
    limit_s: int | None = None,
    limit_cost: Rate | None = None,
    warn_at: Iterable[float] = (0.5, 0.8, 1.0),
    *,
    rate_per_second: Rate | None = None,
    prices: Mapping[str, Rate] | None = None,
    model: str | None = None,
    tier: str | None = None,
) -> Callable[[Observable[int]], Observable[BudgetAlert]]:
    """A :class:`BudgetAlert` the first time billed seconds reach each ``warn_at`` fraction
    of a limit, never twice (also not after a drop and a new rise).

    With both limits, a threshold is crossed when either limit reaches it. A jump past
    several thresholds emits one alert per threshold, lowest first. ``limit_cost`` needs
    a price (``rate_per_second`` or ``prices`` + ``model``, at the speed ``tier`` as in
    :func:`cost`); comparisons are exact.
    """
    from ._budgetalert import budget_alert_

    return budget_alert_(
        limit_s, limit_cost, warn_at, rate_per_second=rate_per_second, prices=prices,
        model=model, tier=tier,
    )  # fmt: skip


def budget_guard(
    session: Disconnectable,
    limit_s: int | None = None,
    limit_cost: Rate | None = None,
    *,
    rate_per_second: Rate | None = None,
    prices: Mapping[str, Rate] | None = None,
    model: str | None = None,
    tier: str | None = None,
) -> Callable[[Observable[int]], Observable[BudgetExceeded]]:
    """Disconnect ``session`` cleanly once billed seconds reach a limit.

    Pipe a :func:`billed_seconds` stream through it. When the limit is reached it emits
    one :class:`BudgetExceeded`, completes, and schedules ``session.disconnect()`` on the
    running loop (so it is called from within an asyncio program). A ``limit_cost`` is
    priced as in :func:`cost` (``tier``: the session's speed tier).
    """
    from ._budgetguard import budget_guard_

    return budget_guard_(
        session, limit_s, limit_cost, rate_per_second=rate_per_second, prices=prices,
        model=model, tier=tier,
    )  # fmt: skip


def stall_detector(
    timeout_s: float,
    states: Observable[Any] | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[Any]], Observable[Stall]]:
    """A :class:`Stall` when the session is generating but no tick came for ``timeout_s``.

    Pipe ``generation_ticks`` through it; ``states`` is ``session.connection_changes``
    (without it the session is assumed to generate from subscription on). The clock
    starts on entering ``generating`` and restarts at every tick; leaving ``generating``
    stops it. One stall is reported per silence: the next tick re-arms the detector.
    """
    from ._stalldetector import stall_detector_

    return stall_detector_(timeout_s, states, scheduler)


def billing_rate(
    window_s: float, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[int]], Observable[float]]:
    """Billed seconds per minute over the last ``window_s`` seconds, from a total stream.

    Pipe a :func:`billed_seconds` stream through it. The first total is the baseline;
    each later increase is a sample at its arrival time. Emits at every input and again
    whenever a sample leaves the window ``(now - window_s, now]``, so the rate falls to 0
    when billing stops instead of freezing at its last value.
    """
    from ._billingrate import billing_rate_

    return billing_rate_(window_s, scheduler)


def quality(
    thresholds: QualityThresholds | None = None,
) -> Callable[[Observable[SessionStats]], Observable[ConnectionQuality]]:
    """A :class:`~rxrealtime.quality.ConnectionQuality` verdict from a stats stream
    (``session.stats`` or a replay's), emitted when the level or the limiting factor
    changes. ``thresholds`` default to the table in :mod:`rxrealtime.quality`; the same
    grading backs ``session.quality``."""
    from ._quality import quality_

    return quality_(thresholds)


# -- burn rate, projection and the idle guard ---------------------------------------------


def burn_rate(
    window_s: float = 60.0,
    *,
    rate_per_second: Rate | None = None,
    prices: Mapping[str, Rate] | None = None,
    model: str | None = None,
    tier: str | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[int]], Observable[BurnRate]]:
    """A :class:`BurnRate`: billed seconds per minute over the last ``window_s`` seconds,
    and what they cost per minute with a price.

    Pipe a :func:`billed_seconds` stream through it; it emits at every total and again as
    samples leave the window, so the burn falls to 0 when billing stops. Unlike
    :func:`billing_rate`, it divides by the time seen so far while that is shorter than
    the window, so it does not read low during the first window. The price is picked as
    in :func:`cost` (``tier``: the session's speed tier).
    """
    from ._burnrate import burn_rate_

    return burn_rate_(
        window_s, rate_per_second=rate_per_second, prices=prices, model=model, tier=tier,
        scheduler=scheduler,
    )  # fmt: skip


def projection(
    limit_s: int | None = None,
    limit_cost: Rate | None = None,
    *,
    window_s: float = 60.0,
    rate_per_second: Rate | None = None,
    prices: Mapping[str, Rate] | None = None,
    model: str | None = None,
    tier: str | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[int]], Observable[Projection]]:
    """Where billing is heading: a :class:`Projection` with the total, the burn rate over
    ``window_s``, what the next hour bills at that rate, and (with a limit) the fraction
    of the budget used, the seconds left and the time until the budget runs out.

    Pipe a :func:`billed_seconds` stream through it; it emits when :func:`burn_rate`
    does. ``limit_cost`` needs a price (picked as in :func:`cost`, ``tier`` being the
    session's speed tier); with both limits the first one reached counts.
    """
    from ._projection import projection_

    return projection_(
        limit_s, limit_cost, window_s=window_s, rate_per_second=rate_per_second,
        prices=prices, model=model, tier=tier, scheduler=scheduler,
    )  # fmt: skip


def idle_guard(
    session: Disconnectable,
    after_s: float,
    *,
    activity: Observable[Any] | None = None,
    viewers: Callable[[], int] | None = None,
    baseline: int | None = None,
    states: Observable[Any] | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[Any]], Observable[IdleStop]]:
    """Disconnect ``session`` once it has generated for ``after_s`` seconds with no prompt
    or image change and nobody watching its video: a forgotten session still bills.

    Pipe ``session.generation_ticks`` through it. Idle time runs only while the session
    is generating (``states``, default ``session.connection_changes``); a value on
    ``activity`` (default: ``session.prompt_acks`` and ``session.image_acks``) restarts
    it, and so does each tick or check while ``viewers()`` is above 0. By default viewers
    are the subscribers of ``session.frames`` above a baseline: the count at the first
    tick (the session's own watchers, a terminal view...), lowered whenever fewer are
    seen. A page that already shows the video at that first tick is taken for part of
    the baseline: pass ``baseline=`` (or ``viewers=``) when that can happen. On trip it
    emits one :class:`IdleStop`, completes and schedules ``session.disconnect()``.
    """
    from ._idleguard import idle_guard_

    return idle_guard_(
        session, after_s, activity=activity, viewers=viewers, baseline=baseline,
        states=states, scheduler=scheduler,
    )  # fmt: skip


def __getattr__(name: str) -> Any:
    """Load the result types that live beside their operator on first use; ``Rate`` and
    ``SPEED_MULTIPLIERS`` are :mod:`rxrealtime.billing`'s."""
    import importlib

    if name in ("Rate", "SPEED_MULTIPLIERS"):
        return getattr(importlib.import_module("..billing", __name__), name)
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
