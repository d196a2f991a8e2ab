"""Many sessions as one set of hot streams, keyed by session, with fleet totals.

A dashboard or an exporter watching fifty sessions wants one ``billed`` stream, not
fifty subscriptions to wire by hand. :class:`Fleet` subscribes to each added session and
republishes its events as :class:`Keyed` values on fleet-wide streams, plus a
:class:`FleetTotals` state stream.

Keys: a session is keyed by the ``key=`` given to :meth:`Fleet.add`, else by the id of
its *first* server session (``session.session_id`` if it is already connected, else the
first ``session_started``). The key then stays put across reconnects, so one client
session is one row, one metric series, one line of a plot. Values a session emits before
its first server session id is known (only connection states and connect errors) carry
the provisional key ``pending-N`` (N: order of addition).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, TypeVar

from reactivex.disposable import CompositeDisposable

from . import protocol as p
from .billing import STANDARD, BilledTick, Rate, SessionBilling, resolve_rate, tier_of
from .exceptions import ConfigError, RealtimeError
from .session import ConnectionState, Session, SessionInfo
from .streams import HotStream, StateStream

__all__ = ["Fleet", "FleetTotals", "Keyed"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Keyed(Generic[T]):
    """One session's value on a fleet stream; ``tier`` is its speed tier (``standard`` or
    ``fast``), which a consumer pricing the value needs beside the model."""

    key: str
    model: str
    value: T
    tier: str = STANDARD


@dataclass(frozen=True, slots=True)
class FleetTotals:
    """The fleet at a glance; ``cost`` is ``None`` when the fleet has no prices."""

    billed_s: int = 0
    sessions: int = 0
    generating: int = 0
    cost: Decimal | None = None


class _Member:
    def __init__(
        self,
        session: Session,
        key: str | None,
        index: int,
        on_billed: Callable[[_Member, BilledTick], None],
    ) -> None:
        self.session = session
        self.fixed_key = key or session.session_id
        self.provisional = f"pending-{index}"
        self.state = session.state
        self.tier = tier_of(session)
        self.price = Decimal(0)
        self.billing = SessionBilling(session, on_billed=lambda billed: on_billed(self, billed))
        self.subscriptions = CompositeDisposable(self.billing)

    @property
    def key(self) -> str:
        return self.fixed_key or self.provisional

    @property
    def model(self) -> str:
        return self.session.model.name


class Fleet:
    """Sessions merged into keyed hot streams; see the module docstring for keys.

    ``rate_per_second`` or ``prices`` (a per-model price table) make the totals carry a
    cost; each session is priced at its speed tier (``session.tier``: a ``fast`` second
    costs the standard price times ``SPEED_MULTIPLIERS["fast"]``, or the table's
    ``"model:fast"`` entry; see :func:`~rxrealtime.billing.resolve_rate`). Streams:
    ``states``, ``ticks``, ``billed`` (running total per session, across reconnects),
    ``billed_deltas`` (seconds billed by each tick), ``errors``, ``prompt_acks``, and
    ``totals`` (a state stream: replays the current totals).
    """

    def __init__(
        self,
        sessions: Iterable[Session] = (),
        *,
        rate_per_second: Rate | None = None,
        prices: Mapping[str, Rate] | None = None,
    ) -> None:
        if rate_per_second is not None and prices is not None:
            raise ConfigError("pass rate_per_second or prices, not both")
        self._rate = resolve_rate(rate_per_second)
        self._prices = dict(prices) if prices is not None else None
        self._members: dict[int, _Member] = {}
        self._added = 0
        self._closed = False
        # Totals kept incrementally: a tick costs O(1), not a walk over every member.
        self._billed_s = 0
        self._generating = 0
        self._cost = Decimal(0)
        self.states: HotStream[Keyed[ConnectionState]] = HotStream("fleet.states")
        """Each session's connection state on every change, and its current one when it
        is added."""
        self.ticks: HotStream[Keyed[p.GenerationTick]] = HotStream("fleet.ticks")
        """Every billing tick of every session, as received (cumulative seconds of its
        current server session)."""
        self.billed: HotStream[Keyed[int]] = HotStream("fleet.billed")
        """A session's billed seconds so far, across reconnects, after each of its ticks."""
        self.billed_deltas: HotStream[Keyed[int]] = HotStream("fleet.billed_deltas")
        """Seconds billed by one tick, when more than 0 (a duplicate or late tick bills 0
        and is not sent)."""
        self.errors: HotStream[Keyed[RealtimeError]] = HotStream("fleet.errors")
        """Every error of every session, typed, as on the session's ``errors``."""
        self.prompt_acks: HotStream[Keyed[p.PromptAck]] = HotStream("fleet.prompt_acks")
        """Every prompt acknowledgement of every session, accepted or rejected."""
        self.totals: StateStream[FleetTotals] = StateStream("fleet.totals", self._totals())
        """The fleet's totals, on every add, remove, state change and billed second;
        replays the current totals to each new subscriber."""
        for session in sessions:
            self.add(session)

    def __repr__(self) -> str:
        return f"<Fleet sessions={len(self._members)} billed_s={self.total_billed_s}>"

    # -- membership ------------------------------------------------------------------

    def add(self, session: Session, key: str | None = None) -> str:
        """Watch ``session``; returns its current key (provisional until it connects)."""
        if self._closed:
            raise ConfigError("this fleet is closed")
        if id(session) in self._members:
            return self._members[id(session)].key
        if self._prices is not None:  # fail now, not mid-session
            resolve_rate(None, self._prices, session.model.name, tier_of(session))
        self._added += 1
        member = _Member(session, key, self._added, self._on_billed)
        member.price = self.price_of(member.model, member.tier) or Decimal(0)
        self._members[id(session)] = member
        self._billed_s += member.billing.total
        self._cost += member.price * member.billing.total
        self._generating += member.state is ConnectionState.GENERATING
        subs = member.subscriptions
        subs.add(session.session_started.subscribe(lambda info: self._on_started(member, info)))
        subs.add(session.connection_changes.subscribe(lambda s: self._on_state(member, s)))
        subs.add(session.errors.subscribe(lambda e: self.errors.emit(self._keyed(member, e))))
        subs.add(
            session.prompt_acks.subscribe(lambda a: self.prompt_acks.emit(self._keyed(member, a)))
        )
        self._publish_totals()
        return member.key

    def remove(self, session: Session) -> None:
        """Stop watching ``session``; its billed seconds leave the totals."""
        member = self._members.pop(id(session), None)
        if member is not None:
            member.subscriptions.dispose()
            self._billed_s -= member.billing.total
            self._cost -= member.price * member.billing.total
            self._generating -= member.state is ConnectionState.GENERATING
            self._publish_totals()

    def close(self) -> None:
        """Stop watching every session and complete the fleet's streams."""
        if self._closed:
            return
        self._closed = True
        for member in self._members.values():
            member.subscriptions.dispose()
        for stream in (self.states, self.ticks, self.billed, self.billed_deltas):
            stream.complete()
        for stream_ in (self.prompt_acks, self.errors, self.totals):
            stream_.complete()

    # -- reading -------------------------------------------------------------------

    @property
    def sessions(self) -> list[Session]:
        """The sessions watched now, in the order they were added."""
        return [m.session for m in self._members.values()]

    def key_of(self, session: Session) -> str:
        """The key ``session``'s values carry now (``pending-N`` until its first server
        session id is known); raises ``KeyError`` if the fleet does not watch it."""
        return self._members[id(session)].key

    @property
    def billed_by_session(self) -> dict[str, int]:
        """Billed seconds of each watched session, across reconnects, by key."""
        return {m.key: m.billing.total for m in self._members.values()}

    @property
    def total_billed_s(self) -> int:
        """Billed seconds of every watched session (a removed one no longer counts)."""
        return sum(m.billing.total for m in self._members.values())

    def price_of(self, model: str, tier: str | None = None) -> Decimal | None:
        """The price of one billed second of ``model`` at the speed ``tier`` (``None``:
        standard), ``None`` when the fleet has no prices; raises
        :class:`~rxrealtime.ConfigError` for a model (or tier) the prices cannot price."""
        if self._prices is not None:
            return resolve_rate(None, self._prices, model, tier)
        return resolve_rate(self._rate, None, None, tier)

    # -- wiring --------------------------------------------------------------------

    def _keyed(self, member: _Member, value: T) -> Keyed[T]:
        return Keyed(member.key, member.model, value, member.tier)

    def _on_started(self, member: _Member, info: SessionInfo) -> None:
        if member.fixed_key is None:
            member.fixed_key = info.sid  # the member's SessionBilling resets its clock

    def _on_billed(self, member: _Member, billed: BilledTick) -> None:
        self.ticks.emit(self._keyed(member, billed.tick))
        if billed.delta:
            self.billed_deltas.emit(self._keyed(member, billed.delta))
        self.billed.emit(self._keyed(member, billed.total))
        if billed.delta:
            self._billed_s += billed.delta
            self._cost += member.price * billed.delta
            self._publish_totals()

    def _on_state(self, member: _Member, state: ConnectionState) -> None:
        generating = ConnectionState.GENERATING
        self._generating += (state is generating) - (member.state is generating)
        member.state = state
        self.states.emit(self._keyed(member, state))
        self._publish_totals()

    def _totals(self) -> FleetTotals:
        priced = self._rate is not None or self._prices is not None
        return FleetTotals(
            billed_s=self._billed_s,
            sessions=len(self._members),
            generating=self._generating,
            cost=self._cost if priced else None,
        )

    def _publish_totals(self) -> None:
        if not self._closed:
            self.totals.emit(self._totals())
