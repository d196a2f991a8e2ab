"""A live terminal view of one session (rich), redrawn at most every ``refresh_s``.

Redraws are driven by the session's own events, sampled on the session's scheduler
(``ops.sample``): a burst of ticks and errors costs one redraw per period, nothing is
drawn while nothing happens, and the view never polls or sleeps. Frames are counted but
never trigger a redraw, as they arrive far faster than anyone reads.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import reactivex
from reactivex import abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable
from rich.console import Console
from rich.live import Live
from rich.table import Table

from .. import protocol as p
from ..billing import STANDARD, Rate, SessionBilling, resolve_rate, tier_of
from ..diagnostics import PhaseTiming, Reconnected
from ..exceptions import RealtimeError
from ..latency import GlassToGlass
from ..operators import Projection, Stall, billed_seconds, projection, stall_detector
from ..session import ConnectionState, Session

__all__ = ["TerminalDashboard", "glass_to_glass", "kbits", "sparkline"]

logger = logging.getLogger(__name__)

_BARS = "▁▂▃▄▅▆▇█"

STATE_STYLES = {
    ConnectionState.GENERATING: "bold green",
    ConnectionState.CONNECTED: "green",
    ConnectionState.CONNECTING: "yellow",
    ConnectionState.RECONNECTING: "bold yellow",
    ConnectionState.DISCONNECTED: "red",
}


QUALITY_STYLES = {"good": "bold green", "fair": "yellow", "poor": "bold yellow",
                  "critical": "bold red"}  # fmt: skip


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.0001')).normalize():f}"


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f} ms"


def kbits(bps: float | None) -> str:
    """A measured bitrate as ``412 kbit/s`` (``1.25 Mbit/s`` from 1 Mbit/s on); ``n/a``
    when not measured, never 0."""
    if bps is None:
        return "n/a"
    return f"{bps / 1e6:.2f} Mbit/s" if bps >= 1e6 else f"{bps / 1000:.0f} kbit/s"


def glass_to_glass(latency: GlassToGlass) -> str:
    """``p50 42 ms · p90 61 ms · first frame 0.84 s · picture-stamp, 120 samples``; a
    figure not measured yet reads ``n/a``, never 0."""
    parts = [f"p50 {_ms(latency.p50_s)} · p90 {_ms(latency.p90_s)}"]
    if latency.first_frame_s is not None:
        parts.append(f"first frame {latency.first_frame_s:.2f} s")
    if latency.samples:
        parts.append(f"{latency.source or 'unknown source'}, {latency.samples} samples")
    return " · ".join(parts)


def sparkline(values: list[int]) -> str:
    """One block character per value, scaled to the largest (all zero: the lowest bar)."""
    top = max(values, default=0)
    if top <= 0:
        return _BARS[0] * len(values)
    return "".join(_BARS[round(v * (len(_BARS) - 1) / top)] for v in values)


class TerminalDashboard:
    """State, billed seconds, cost, tick-rate sparkline and recent errors of a session.

    Use as ``with TerminalDashboard(session): ...`` (or :meth:`start`/:meth:`stop`).
    ``scheduler`` defaults to ``session.scheduler``; ``rate_per_second`` or ``prices``
    (per-model table) add a cost row, priced at the session's speed tier
    (``session.tier``, see :func:`~rxrealtime.billing.resolve_rate`). ``extra_rows``
    lets a caller (the demo) add rows. A burn-rate row (over ``burn_window_s``) is always
    shown; ``budget_s`` / ``budget_cost`` add a budget row: share used, seconds left, time
    to the limit.
    """

    def __init__(
        self,
        session: Session,
        *,
        rate_per_second: Rate | None = None,
        prices: Mapping[str, Rate] | None = None,
        refresh_s: float = 0.25,
        history_s: int = 30,
        scheduler: abc.SchedulerBase | None = None,
        console: Console | None = None,
        transient: bool = False,
        title: str | None = None,
        extra_rows: Callable[[], list[tuple[str, str]]] | None = None,
        stall_after_s: float | None = 5.0,
        budget_s: int | None = None,
        budget_cost: Rate | None = None,
        burn_window_s: float = 60.0,
    ) -> None:
        self.session = session
        self.refresh_s = refresh_s
        self.history_s = history_s
        self.scheduler = scheduler if scheduler is not None else session.scheduler
        self.console = console if console is not None else Console()
        self.transient = transient
        tier = tier_of(session)
        shown = session.model.name + ("" if tier == STANDARD else f" · {tier}")
        self.title = title or f"rxrealtime · {shown}"
        self.extra_rows = extra_rows
        self.state = session.state
        self.ticks = 0
        self.frames = 0
        self.prompt: str | None = None
        self.errors: deque[str] = deque(maxlen=5)
        self.error_count = 0
        self.refreshes = 0
        self.stall_after_s = stall_after_s
        self.stalls = 0
        self.stalled = False
        self.quality: Any = None
        self.stats: Any = None
        self.reconnects = 0
        self.downtime_s = 0.0
        self.first_frame_s: float | None = None
        self.billing = SessionBilling(
            session,
            rate=resolve_rate(
                rate_per_second, prices, session.model.name if prices else None, tier
            ),
        )
        self.projection: Projection | None = None
        self._project = projection(
            budget_s, budget_cost, window_s=burn_window_s, rate_per_second=self.billing.rate,
            scheduler=self.scheduler,
        )  # fmt: skip
        self._tick_times: deque[float] = deque()
        self._live: Live | None = None
        self._subscriptions = CompositeDisposable(self.billing)
        self._watch()

    # -- the model ---------------------------------------------------------------------

    @property
    def rate(self) -> Decimal | None:
        """The price per billed second, or ``None`` when no rate or price table was given."""
        return self.billing.rate

    @property
    def billed_s(self) -> int:
        """Billed seconds of the session so far, across reconnects."""
        return self.billing.total

    @property
    def cost(self) -> Decimal | None:
        """``rate * billed_s`` as ``Decimal``, or ``None`` without a rate."""
        return self.billing.cost

    def _now(self) -> float:
        return self.scheduler.to_seconds(self.scheduler.now)

    def _watch(self) -> None:
        s = self.session

        def on_state(state: ConnectionState) -> None:
            self.state = state

        def on_tick(_: p.GenerationTick) -> None:  # self.billing counts the seconds
            self.stalled = False
            self.ticks += 1
            self._tick_times.append(self._now())

        def on_error(error: RealtimeError) -> None:
            self.error_count += 1
            self.errors.append(f"{type(error).__name__}: {error}")

        def on_ack(ack: p.PromptAck) -> None:
            if ack.success:
                self.prompt = ack.prompt

        def on_frame(_: object) -> None:
            self.frames += 1

        def on_stall(_: Stall) -> None:
            self.stalls += 1
            self.stalled = True

        def on_diagnostic(event: Any) -> None:
            if isinstance(event, Reconnected):
                self.reconnects += 1
                self.downtime_s += event.downtime_s
            elif isinstance(event, PhaseTiming) and event.phase == "first_frame":
                if self.first_frame_s is None:
                    self.first_frame_s = event.seconds

        def on_quality(quality: Any) -> None:
            self.quality = quality

        def on_stats(stats: Any) -> None:
            self.stats = stats

        def on_projection(value: Projection) -> None:
            self.projection = value

        watched: list[reactivex.Observable[Any]] = []
        for name, action in (("quality", on_quality), ("stats", on_stats),
                             ("diagnostics", on_diagnostic)):  # fmt: skip
            stream = getattr(s, name, None)  # a replay or a test double may lack some
            if stream is not None:
                watched.append(stream.pipe(ops.do_action(action)))
        if self.stall_after_s is not None:
            detector = stall_detector(
                self.stall_after_s, states=s.connection_changes, scheduler=self.scheduler
            )
            watched.append(s.generation_ticks.pipe(detector, ops.do_action(on_stall)))
        billed = s.generation_ticks.pipe(billed_seconds(resets=s.session_started))
        watched.append(billed.pipe(self._project, ops.do_action(on_projection)))
        changes: reactivex.Observable[Any] = reactivex.merge(
            *watched,
            s.connection_changes.pipe(ops.do_action(on_state)),
            s.session_started,
            s.generation_ticks.pipe(ops.do_action(on_tick)),
            s.errors.pipe(ops.do_action(on_error)),
            s.prompt_acks.pipe(ops.do_action(on_ack)),
        )
        self._subscriptions.add(
            changes.pipe(ops.sample(self.refresh_s, scheduler=self.scheduler)).subscribe(
                lambda _: self.refresh()
            )
        )
        self._subscriptions.add(s.frames.subscribe(on_frame))

    def tick_rate_history(self) -> list[int]:
        """Ticks per second over the last ``history_s`` seconds, oldest first."""
        now = self._now()
        while self._tick_times and self._tick_times[0] <= now - self.history_s:
            self._tick_times.popleft()
        buckets = [0] * self.history_s
        for t in self._tick_times:
            index = self.history_s - 1 - int(now - t)
            if 0 <= index < self.history_s:
                buckets[index] += 1
        return buckets

    # -- the view ----------------------------------------------------------------------

    def render(self) -> Table:
        """The view as a rich ``Table`` (what is drawn; usable without a live terminal)."""
        table = Table(title=self.title, show_header=False, min_width=48)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        table.add_row("url", self.session.url)  # redacted by the session
        table.add_row("state", f"[{STATE_STYLES.get(self.state, '')}]{self.state}[/]")
        if self.session.session_id:
            table.add_row("session", self.session.session_id)
        if self.prompt is not None:
            table.add_row("prompt", self.prompt)
        table.add_row("billed", f"{self.billed_s} s ({self.ticks} ticks)")
        cost = self.cost
        table.add_row("cost", "n/a (no rate given)" if cost is None else f"{cost:f}")
        for name, value in self._budget_rows():
            table.add_row(name, value)
        history = self.tick_rate_history()
        table.add_row(f"ticks/s ({self.history_s} s)", sparkline(history) + f" {history[-1]}")
        table.add_row("frames received", str(self.frames))
        if self.quality is not None:
            style = QUALITY_STYLES.get(self.quality.level, "")
            limit = f" ({self.quality.limiting})" if self.quality.limiting else ""
            table.add_row("quality", f"[{style}]{self.quality.level}[/]{limit}")
        if self.stats is not None:
            st = self.stats
            rtt = "n/a" if st.rtt_s is None else f"{st.rtt_s * 1000:.0f} ms"
            loss = "n/a" if st.packet_loss is None else f"{st.packet_loss:.1%}"
            table.add_row("fps / rtt / loss", f"{st.inbound_fps:.1f} / {rtt} / {loss}")
            table.add_row("bitrate in / out", f"{kbits(st.inbound_bitrate_bps)} / "
                          f"{kbits(st.outbound_bitrate_bps)}")  # fmt: skip
            if st.latency is not None:  # None: nothing matched yet, so no row (never 0)
                table.add_row("glass-to-glass", glass_to_glass(st.latency))
        if self.first_frame_s is not None:
            table.add_row("first frame", f"{self.first_frame_s:.2f} s after connect")
        if self.reconnects:
            table.add_row("reconnects", f"{self.reconnects} ({self.downtime_s:.1f} s down)")
        if self.stall_after_s is not None:
            now = f" [yellow]no tick for {self.stall_after_s:g} s[/]" if self.stalled else ""
            table.add_row("stalls", f"{self.stalls}{now}")
        for name, value in self.extra_rows() if self.extra_rows else []:
            table.add_row(name, value)
        table.add_row("errors", str(self.error_count))
        for error in self.errors:
            table.add_row("", f"[red]{error}[/]")
        return table

    def _budget_rows(self) -> list[tuple[str, str]]:
        pr = self.projection
        if pr is None:
            return []
        per_min = "" if pr.cost_per_min is None else f" ({_money(pr.cost_per_min)}/min)"
        hour = "" if pr.next_hour_cost is None else f", {_money(pr.next_hour_cost)}"
        rows = [("burn rate", f"{pr.seconds_per_min:.1f} s/min{per_min} · next hour "
                              f"{pr.next_hour_s:.0f} s{hour}")]  # fmt: skip
        if pr.used is not None and pr.remaining_s is not None:
            style = "bold red" if pr.used >= 1 else "yellow" if pr.used >= 0.8 else "green"
            filled = min(20, round(pr.used * 20))
            eta = pr.time_to_limit_s
            when = "spent" if pr.used >= 1 else "not burning" if eta is None else f"~{eta:.0f} s"
            rows.append(("budget", f"[{style}]{'█' * filled}{'░' * (20 - filled)} "
                         f"{pr.used:.0%}[/] · {pr.remaining_s:.0f} s left · {when}"))  # fmt: skip
        return rows

    def refresh(self) -> None:
        """Redraw now (the sampled event stream calls this; so may the owner, at the end)."""
        self.refreshes += 1
        if self._live is not None:
            self._live.update(self.render(), refresh=True)

    def start(self) -> TerminalDashboard:
        """Take over the terminal and draw the view (``with`` does this); returns ``self``."""
        if self._live is None:
            self._live = Live(
                self.render(),
                console=self.console,
                auto_refresh=False,
                transient=self.transient,
            )
            self._live.start(refresh=True)
        return self

    def stop(self) -> None:
        """Draw the final state once, then stop listening and release the terminal."""
        if self._live is not None:
            self.refresh()
            self._live.stop()
            self._live = None
        self._subscriptions.dispose()

    def __enter__(self) -> TerminalDashboard:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
