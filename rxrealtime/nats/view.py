"""Showing a :class:`~.aggregator.NatsFleet`: a live rich table, or JSON lines.

The table (one row per session: key, worker, model, state, billed seconds, cost, server
sessions; then the totals, the budget and the latest commands and errors) is redrawn
at most every ``refresh_s``, and only when something changed. In JSON mode each change
of the totals is one line ``{"event": "totals", ...}`` (also at most every
``refresh_s``), and each stop command and error its own line as it happens.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import deque
from typing import Any, TextIO

from reactivex.disposable import CompositeDisposable
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..exceptions import RealtimeError
from ..fleet import FleetTotals, Keyed
from ..states import ConnectionState
from .aggregator import NatsFleet
from .frames import StopCommand

__all__ = ["FleetView", "totals_json"]

STYLES = {
    ConnectionState.GENERATING: "bold green",
    ConnectionState.CONNECTED: "green",
    ConnectionState.CONNECTING: "yellow",
    ConnectionState.RECONNECTING: "bold yellow",
    ConnectionState.DISCONNECTED: "red",
}


def totals_json(agg: NatsFleet) -> dict[str, Any]:
    t = agg.totals.value
    return {
        "event": "totals",
        "billed_s": t.billed_s,
        "sessions": t.sessions,
        "generating": t.generating,
        "cost": None if t.cost is None else str(t.cost),
        "budget_s": agg.budget_s,
        "budget_crossed": agg.budget_crossed_at is not None,
        "by_session": agg.billed_by_session,
        "at": round(time.time(), 3),
    }


class FleetView:
    """Live view of a fleet; ``async with FleetView(agg): ...`` or :meth:`run`."""

    def __init__(
        self,
        agg: NatsFleet,
        *,
        json_mode: bool = False,
        console: Console | None = None,
        out: TextIO | None = None,
        refresh_s: float = 0.25,
        title: str = "rxrealtime fleet",
    ):
        self.agg, self.json_mode, self.refresh_s, self.title = agg, json_mode, refresh_s, title
        self.console = console or Console()
        self.out = out or sys.stdout
        self.events: deque[str] = deque(maxlen=6)
        self._changed = True
        self._last_totals: FleetTotals | None = None
        self._subscriptions = CompositeDisposable()
        self._live: Live | None = None
        self._task: asyncio.Task[None] | None = None

    def _mark(self, *_: Any) -> None:
        self._changed = True

    def _on_command(self, command: StopCommand) -> None:
        target = "every session" if command.fleet_wide else f"{command.worker}/{command.key[:12]}"
        self.events.append(f"[bold red]stop[/] → {target}: {command.reason}")
        self._line(
            {
                "event": "stop",
                "id": command.id,
                "worker": command.worker,
                "key": command.key,
                "reason": command.reason,
            }
        )
        self._changed = True

    def _on_error(self, error: Keyed[RealtimeError]) -> None:
        self.events.append(f"[red]error[/] {error.key[:12]}: {error.value}")
        self._line(
            {
                "event": "error",
                "key": error.key,
                "type": type(error.value).__name__,
                "message": str(error.value),
            }
        )
        self._changed = True

    def _line(self, doc: dict[str, Any]) -> None:
        if self.json_mode:
            print(json.dumps(doc), file=self.out, flush=True)

    def render(self) -> Group:
        agg = self.agg
        table = Table(title=self.title, expand=False)
        for column in ("session", "worker", "model", "state", "billed s", "cost", "links"):
            right = column in ("billed s", "cost", "links")
            table.add_column(
                column,
                justify="right" if right else "left",
                no_wrap=True,
                min_width=12 if column == "state" else None,
            )
        for m in sorted(agg.members, key=lambda m: (m.worker, m.display_key)):
            price = agg.price_of(m.model)
            table.add_row(
                m.display_key[:10],
                m.worker,
                m.model,
                Text(str(m.state), style=STYLES.get(m.state, "")),
                str(m.total),
                "" if price is None else str(price * m.total),
                str(len(m.billed)),
            )
        t = agg.totals.value
        summary = (
            f"[bold]{t.billed_s} s billed[/] over {t.sessions} sessions, {t.generating} generating"
        )
        if t.cost is not None:
            summary += f", cost {t.cost}"
        if agg.budget_s is not None or agg.budget_cost is not None:
            limit = f"{agg.budget_s} s" if agg.budget_s is not None else str(agg.budget_cost)
            crossed = "[bold red]reached[/]" if agg.budget_crossed_at else "ok"
            summary += f"; budget {limit}: {crossed}"
        return Group(table, Text.from_markup(summary), *(Text.from_markup(e) for e in self.events))

    def refresh(self) -> None:
        """Redraw (or print a totals line) if anything changed since the last time."""
        if self.json_mode:
            totals = self.agg.totals.value
            if totals != self._last_totals:
                self._last_totals = totals
                self._line(totals_json(self.agg))
            return
        if self._changed and self._live is not None:
            self._changed = False
            self._live.update(self.render(), refresh=True)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            self.refresh()

    def start(self) -> None:
        agg = self.agg
        for stream in (agg.states, agg.billed, agg.totals):
            self._subscriptions.add(stream.subscribe(self._mark))
        self._subscriptions.add(agg.commands.subscribe(self._on_command))
        self._subscriptions.add(agg.errors.subscribe(self._on_error))
        if not self.json_mode:
            self._live = Live(self.render(), console=self.console, auto_refresh=False)
            self._live.start()
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._changed = True
        self.refresh()
        if self._live is not None:
            self._live.stop()
        self._subscriptions.dispose()

    async def __aenter__(self) -> FleetView:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
