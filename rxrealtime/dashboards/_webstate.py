"""What the web dashboard shows, kept from the sessions' streams: one row per session,
the fleet's totals, a bounded history for the chart and a bounded billing log.

Nothing here does I/O: :mod:`rxrealtime.dashboards.web` serves :meth:`LiveState.snapshot`
and is told (``on_change``) when it changed. Every value is JSON-ready; money is a
string (``Decimal`` printed exactly) and no URL other than ``session.url`` (redacted by
the session) ever appears, so no API key can.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable

from ..billing import Rate, tier_of, to_decimal
from ..diagnostics import Reconnected
from ..fleet import Fleet, FleetTotals, Keyed
from ..latency import GlassToGlass
from ..operators import Projection, billed_seconds, projection
from ..session import Session

__all__ = ["LiveState", "SessionRow", "money"]

#: Used share of a budget from which its bar turns amber, and red.
WARN_AT, OVER_AT = 0.8, 1.0


def money(value: Decimal | None) -> str | None:
    """A Decimal as plain text (no exponent), at most 6 decimals; ``None`` stays ``None``."""
    if value is None:
        return None
    return f"{value.quantize(Decimal('0.000001')).normalize():f}"


def _level(used: float | None) -> str | None:
    if used is None:
        return None
    return "over" if used >= OVER_AT else "warn" if used >= WARN_AT else "ok"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _latency(latency: GlassToGlass | None) -> dict[str, Any] | None:
    """Glass-to-glass latency as the page shows it; ``None`` (and ``None`` figures) where
    nothing was measured, never 0."""
    if latency is None:
        return None
    return {"p50_ms": _ms(latency.p50_s), "p90_ms": _ms(latency.p90_s),
            "first_frame_s": latency.first_frame_s, "samples": latency.samples,
            "source": latency.source}  # fmt: skip


def _bps(stats: Any, name: str) -> float | None:
    """A measured bitrate (bits/s, whole); ``None`` until measured, never 0."""
    value = None if stats is None else getattr(stats, name, None)
    return None if value is None else round(value)


class SessionRow:
    """One session as the page shows it; subscribes at once, :meth:`dispose` stops."""

    def __init__(
        self,
        session: Session,
        *,
        rate: Decimal | None,
        limit_s: int | None,
        limit_cost: Decimal | None,
        window_s: float,
        on_change: Callable[[], None],
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        self.session = session
        self.rate = rate
        self.state = session.state
        self.projection: Projection | None = None
        self.ticks = 0
        self.prompt: str | None = None
        self.quality: Any = None
        self.stats: Any = None
        self.reconnects = 0
        self.downtime_s = 0.0
        self.errors = 0
        self.last_error: str | None = None
        self._changed = on_change
        project = projection(  # without a scheduler: the running loop's, at subscription
            limit_s, limit_cost, window_s=window_s, rate_per_second=rate, scheduler=scheduler
        )
        billed = session.generation_ticks.pipe(billed_seconds(resets=session.session_started))
        self._subscriptions = CompositeDisposable(
            billed.pipe(project).subscribe(self._set("projection")),
            session.connection_changes.subscribe(self._set("state")),
            session.generation_ticks.subscribe(self._on_tick),
            session.errors.subscribe(self._on_error),
            session.prompt_acks.subscribe(self._on_ack),
        )
        for name in ("quality", "stats"):  # a replay or a test double may lack them
            stream: Observable[Any] | None = getattr(session, name, None)
            if stream is not None:
                self._subscriptions.add(stream.subscribe(self._set(name)))
        diagnostics: Observable[Any] | None = getattr(session, "diagnostics", None)
        if diagnostics is not None:
            self._subscriptions.add(diagnostics.subscribe(self._on_diagnostic))

    def _set(self, name: str) -> Callable[[Any], None]:
        def set_value(value: Any) -> None:
            setattr(self, name, value)
            self._changed()

        return set_value

    def _on_tick(self, _: Any) -> None:
        self.ticks += 1  # the projection, fed by the same tick, reports the change

    def _on_error(self, error: Exception) -> None:
        self.errors += 1
        self.last_error = f"{type(error).__name__}: {error}"
        self._changed()

    def _on_ack(self, ack: Any) -> None:
        if ack.success:
            self.prompt = ack.prompt
            self._changed()

    def _on_diagnostic(self, event: Any) -> None:
        if isinstance(event, Reconnected):
            self.reconnects += 1
            self.downtime_s += event.downtime_s
            self._changed()

    @property
    def billed_s(self) -> int:
        return self.projection.billed_s if self.projection is not None else 0

    def as_json(self, key: str) -> dict[str, Any]:
        pr, st, q = self.projection, self.stats, self.quality
        used = pr.used if pr is not None else None
        cost = self.rate * self.billed_s if self.rate is not None else None
        return {
            "key": key,
            "model": self.session.model.name,
            "tier": tier_of(self.session),
            "url": self.session.url,  # redacted by the session
            "state": str(self.state),
            "session_id": self.session.session_id,
            "prompt": self.prompt,
            "billed_s": self.billed_s,
            "ticks": self.ticks,
            "cost": money(cost),
            "burn_per_min": round(pr.seconds_per_min, 3) if pr else 0.0,
            "cost_per_min": money(pr.cost_per_min) if pr else None,
            "next_hour_s": round(pr.next_hour_s, 1) if pr else 0.0,
            "next_hour_cost": money(pr.next_hour_cost) if pr else None,
            "budget_used": None if used is None else round(used, 4),
            "budget_level": _level(used),
            "remaining_s": None if pr is None or pr.remaining_s is None else pr.remaining_s,
            "time_to_limit_s": None if pr is None else pr.time_to_limit_s,
            "quality": getattr(q, "level", None),
            "limiting": getattr(q, "limiting", None),
            "fps": None if st is None else round(st.inbound_fps, 1),
            "rtt_ms": None if st is None or st.rtt_s is None else round(st.rtt_s * 1000, 1),
            "loss": None if st is None or st.packet_loss is None else round(st.packet_loss, 4),
            "bitrate_in_bps": _bps(st, "inbound_bitrate_bps"),
            "bitrate_out_bps": _bps(st, "outbound_bitrate_bps"),
            "latency": None if st is None else _latency(st.latency),
            "reconnects": self.reconnects,
            "downtime_s": round(self.downtime_s, 3),
            "errors": self.errors,
            "last_error": self.last_error,
            "video": f"/video/{key}",
        }

    def dispose(self) -> None:
        self._subscriptions.dispose()


class LiveState:
    """Rows for every session of ``fleet`` (kept in step with its membership), totals,
    a chart history (one point per ``history_step_s``, ``history_len`` points) and the
    billing log (``log_len`` ticks), all bounded.

    ``budget_s`` / ``budget_cost`` are per session, as ``watch --budget-s`` and
    ``budget_guard`` mean them; ``budget_cost`` needs prices on the fleet.
    """

    def __init__(
        self,
        fleet: Fleet,
        *,
        budget_s: int | None = None,
        budget_cost: Rate | None = None,
        window_s: float = 60.0,
        title: str = "rxrealtime",
        on_change: Callable[[], None] = lambda: None,
        scheduler: abc.SchedulerBase | None = None,
        history_step_s: float = 1.0,
        history_len: int = 3600,
        log_len: int = 100_000,
    ) -> None:
        self.fleet = fleet
        self.budget_s = budget_s
        self.budget_cost = None if budget_cost is None else to_decimal(budget_cost, "budget")
        self.window_s = window_s
        self.title = title
        self.on_change = on_change
        self.scheduler = scheduler
        self.rows: dict[int, SessionRow] = {}
        self.history: deque[tuple[float, int, float]] = deque(maxlen=history_len)
        self.history_step_s = history_step_s
        self.log: deque[tuple[float, str, str, int, str | None]] = deque(maxlen=log_len)
        self._subscriptions = CompositeDisposable(
            fleet.totals.subscribe(self._on_totals),
            fleet.billed.subscribe(self._on_billed),
        )

    # -- keeping up ----------------------------------------------------------------

    def _on_totals(self, _: FleetTotals) -> None:
        self.sync()
        self.on_change()

    def sync(self) -> None:
        """Add a row for each new member of the fleet, drop those that left."""
        current = {id(s): s for s in self.fleet.sessions}
        for gone in set(self.rows) - set(current):
            self.rows.pop(gone).dispose()
        for ident, session in current.items():
            if ident not in self.rows:
                self.rows[ident] = SessionRow(
                    session,
                    rate=self.fleet.price_of(session.model.name, tier_of(session)),
                    limit_s=self.budget_s,
                    limit_cost=self.budget_cost,
                    window_s=self.window_s,
                    on_change=self._row_changed,
                    scheduler=self.scheduler,
                )

    def _row_changed(self) -> None:
        self._record_history()
        self.on_change()

    def _on_billed(self, k: Keyed[int]) -> None:
        price = self.fleet.price_of(k.model, k.tier)
        cost = money(price * k.value) if price is not None else None
        self.log.append((round(time.time(), 3), k.key, k.model, k.value, cost))

    def _record_history(self) -> None:
        now = round(time.time(), 3)
        billed = sum(r.billed_s for r in self.rows.values())
        burn = round(sum(r.projection.seconds_per_min for r in self._projected()), 3)
        point = (now, billed, burn)
        history = self.history
        if len(history) >= 2 and now - history[-2][0] < self.history_step_s:
            history[-1] = point  # the newest point moves until a step has passed
        else:
            history.append(point)

    def _projected(self) -> list[Any]:
        return [r for r in self.rows.values() if r.projection is not None]

    # -- reading -------------------------------------------------------------------

    def snapshot(self, with_history: bool = False) -> dict[str, Any]:
        """Everything the page shows, JSON-ready (``history`` only when asked for)."""
        self.sync()
        rows = [(self.fleet.key_of(r.session), r) for r in self.rows.values()]
        totals = self.fleet.totals.value
        projected = [r.projection for r in self._projected()]
        costs = [p.cost_per_min for p in projected if p.cost_per_min is not None]
        hours = [p.next_hour_cost for p in projected if p.next_hour_cost is not None]
        limits = [p.time_to_limit_s for p in projected if p.time_to_limit_s is not None]
        snap: dict[str, Any] = {
            "title": self.title,
            "time": round(time.time(), 3),
            "window_s": self.window_s,
            "budget": None
            if self.budget_s is None and self.budget_cost is None
            else {"limit_s": self.budget_s, "limit_cost": money(self.budget_cost)},
            "totals": {
                "sessions": totals.sessions,
                "generating": totals.generating,
                "billed_s": totals.billed_s,
                "cost": money(totals.cost),
                "burn_per_min": round(sum(p.seconds_per_min for p in projected), 3),
                "cost_per_min": money(sum(costs, Decimal(0))) if costs else None,
                "next_hour_cost": money(sum(hours, Decimal(0))) if hours else None,
                "first_limit_in_s": min(limits) if limits else None,
            },
            "sessions": [row.as_json(key) for key, row in rows],
        }
        if with_history:
            snap["history"] = [list(point) for point in self.history]
        return snap

    def log_csv(self) -> str:
        """The billing log: one line per tick (unix time, session, model, billed, cost)."""
        lines = ["time,session,model,billed_s,cost"]
        lines += [f"{t},{k},{m},{b},{'' if c is None else c}" for t, k, m, b, c in self.log]
        return "\n".join(lines) + "\n"

    def row_for(self, key: str) -> SessionRow | None:
        """The row whose session has this key now."""
        for row in self.rows.values():
            if self.fleet.key_of(row.session) == key:
                return row
        return None

    def dispose(self) -> None:
        self._subscriptions.dispose()
        for row in self.rows.values():
            row.dispose()
        self.rows.clear()
