"""What a tape says at a glance: ``rxrealtime tape show``.

:func:`summarize` reads the records once: duration, ticks, billed seconds (with the
billing clock's rules: a new server session restarts at 0), reconnects and downtime,
stalls, errors by type, prompts and their acks, glass-to-glass latency (from the ``stats``
records, when the tape has them), and a compact timeline in which runs of ticks are folded
into one line.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import protocol as p
from ..billing import BillingClock
from ..exceptions import RealtimeError
from ..latency import GlassToGlass
from ..quality import SessionStats
from ..states import SessionInfo
from .format import LinkRecord, Record
from .reader import Tape

__all__ = ["Event", "LatencySummary", "PromptResult", "TapeSummary", "summarize"]

STALL_FACTOR = 3.0
"""A gap between ticks longer than this many typical tick intervals is a stall."""


@dataclass(frozen=True)
class Event:
    """One line of the timeline: ``t`` seconds in, what happened."""

    t: float
    text: str


@dataclass(frozen=True)
class PromptResult:
    """A prompt the client sent and what the server answered (``None``: no answer)."""

    t: float
    prompt: str
    success: bool | None
    error: str | None = None


@dataclass(frozen=True)
class LatencySummary:
    """Glass-to-glass latency over a tape's ``stats`` records (``SessionStats.latency``).

    Each record carries p50 and p90 over the session's last samples; ``p50_s`` and
    ``p90_s`` are the medians of those over the records that had samples, ``worst_p90_s``
    the largest p90. ``samples`` counts the session's samples (the last record's count);
    ``first_frame_s`` is the first recorded time to first frame. A figure nothing
    measured is ``None``, never 0.
    """

    records: int
    """Stats records whose latency had samples."""
    p50_s: float | None
    p90_s: float | None
    worst_p90_s: float | None
    samples: int
    first_frame_s: float | None
    source: str | None


@dataclass
class TapeSummary:
    """The figures of one tape; :meth:`render` prints them, :meth:`as_json` serialises."""

    path: str
    format: int
    rxrealtime: str
    model: str
    tier: str | None
    """The recorded speed tier; ``None`` for a format 1 tape, which did not record it."""
    url: str
    started_at: str
    video: str | None
    complete: bool
    problem: str | None
    duration_s: float
    records: int
    ticks: int = 0
    refused_ticks: int = 0
    billed_s: int = 0
    server_sessions: int = 0
    reconnects: int = 0
    downtime_s: float = 0.0
    stalls: list[Event] = field(default_factory=list)
    longest_stall_s: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    prompts: list[PromptResult] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    timeline: list[Event] = field(default_factory=list)
    stats_records: int = 0
    """``stats`` records (a tape has them when recorded with ``stats=True``)."""
    latency: LatencySummary | None = None
    """Glass-to-glass latency over the stats records; ``None`` when none carries any."""

    def as_json(self) -> dict[str, Any]:
        """Every figure, the timeline included, as JSON-able data (``tape show --json``)."""
        return asdict(self)

    def render(self, timeline: bool = True) -> str:
        """The summary as text (``tape show``), with the timeline unless ``timeline=False``."""
        status = "complete" if self.complete else "incomplete (the recording did not finish)"
        errors = ", ".join(f"{name} {n}" for name, n in sorted(self.errors.items()))
        lines = [
            f"tape {self.path}: format {self.format}, rxrealtime {self.rxrealtime}, {status}",
            f"  model       {self.model}, tier "
            + (self.tier or "not recorded (format 1 tape: priced as standard)"),
            f"  url         {self.url}",
            f"  started     {self.started_at}" + (f"; video {self.video}" if self.video else ""),
            f"  duration    {self.duration_s:.3f} s, {self.records} records",
            f"  ticks       {self.ticks} delivered, {self.refused_ticks} refused; "
            f"{self.billed_s} s billed over {self.server_sessions} server session(s)",
            f"  reconnects  {self.reconnects}, downtime {self.downtime_s:.3f} s",
            f"  stalls      {len(self.stalls)}"
            + (f" (longest {self.longest_stall_s:.3f} s without a tick)" if self.stalls else ""),
            f"  errors      {sum(self.errors.values())}" + (f": {errors}" if errors else ""),
            f"  prompts     {len(self.prompts)}"
            + (": " + "; ".join(_prompt(r) for r in self.prompts) if self.prompts else ""),
            f"  latency     {self._latency()}",
        ]
        if self.problem:
            lines.append(f"  problem     {self.problem}")
        if timeline:
            lines.append("timeline")
            lines += [f"  {e.t:9.3f}  {e.text}" for e in self.timeline]
        return "\n".join(lines)

    def _latency(self) -> str:
        """The ``latency`` line: glass-to-glass over the stats records, or why not."""
        if not self.stats_records:
            return "n/a (no stats recorded: record(..., stats=True) records them)"
        g = self.latency
        first = (
            "" if g is None or g.first_frame_s is None else f"; first frame {g.first_frame_s:.2f} s"
        )
        if g is None or not g.records:
            return f"glass-to-glass n/a ({self.stats_records} stats records, no samples){first}"
        return (f"glass-to-glass p50 {_ms(g.p50_s)}, p90 {_ms(g.p90_s)} (medians of "
                f"{g.records} stats records; worst p90 {_ms(g.worst_p90_s)}), {g.samples} "
                f"samples by {g.source or 'an unknown source'}{first}")  # fmt: skip


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f} ms"


def _prompt(result: PromptResult) -> str:
    answer = {True: "ok", False: f"rejected ({result.error})", None: "no ack"}[result.success]
    return f"{result.prompt!r} {answer}"


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Builder:
    """Walks the records once, keeping the running figures."""

    def __init__(self, summary: TapeSummary, stall_after_s: float | None) -> None:
        self.s = summary
        self.stall_after_s = stall_after_s
        self.clock = BillingClock(resets_known=True)
        self.down_at: float | None = None
        self.links_up = 0
        self.run: list[tuple[float, int]] = []  # the ticks not yet folded into the timeline
        self.last_tick: float | None = None  # in the current server session
        self.latency: list[GlassToGlass] = []  # of the stats records, in order

    def event(self, t: float, text: str) -> None:
        self.fold()
        self.s.timeline.append(Event(round(t, 6), text))

    def fold(self) -> None:
        """The ticks since the last event, as one timeline line."""
        run, self.run = self.run, []
        if len(run) == 1:
            self.s.timeline.append(Event(run[0][0], f"tick {run[0][1]}"))
        elif run:
            (t0, first), (t1, last) = run[0], run[-1]
            self.s.timeline.append(
                Event(t0, f"ticks {first} → {last} ({len(run)} ticks, to {t1:.3f} s)")
            )

    def tick(self, t: float, tick: p.GenerationTick) -> None:
        self.s.ticks += 1
        self.clock.feed(tick.seconds)
        last, self.last_tick = self.last_tick, t
        limit = self.stall_after_s
        if last is not None and limit is not None and t - last > limit:
            gap = round(t - last, 6)
            self.s.stalls.append(Event(round(last, 6), f"no tick for {gap:.3f} s"))
            self.s.longest_stall_s = max(self.s.longest_stall_s, gap)
            self.event(last, self.s.stalls[-1].text)
        self.run.append((round(t, 6), tick.seconds))

    def record(self, r: Record) -> None:
        kind, value, t = r.kind, r.value, r.t
        if kind == "in" and isinstance(value, p.GenerationTick):
            self.tick(t, value)
        elif kind == "refused":
            self.s.refused_ticks += 1
            self.event(t, f"tick {value.seconds} refused by the client")
        elif kind == "state":
            self.s.states.append(str(value))
            self.event(t, f"state {value}")
        elif kind == "link":
            self.link(t, value)
        elif kind == "session_started":
            self.session(t, value)
        elif kind == "error":
            self.error(t, value)
        elif kind == "out":
            self.sent(t, value)
        elif kind == "prompt_acks":
            self.prompt_ack(t, value)
        elif kind == "image_acks":
            self.event(t, "image ack " + ("ok" if value.success else f"rejected: {value.error}"))
        elif kind == "generation_started":
            self.event(t, "generation started")
        elif kind == "generation_ended":
            self.event(t, f"generation ended: {value.reason} after {value.seconds} s")
        elif kind == "queue_positions":
            self.event(t, f"queue position {value.position} of {value.queue_size}")
        elif kind == "stats":
            self.stats(value)

    def stats(self, stats: SessionStats) -> None:
        self.s.stats_records += 1
        if stats.latency is not None:
            self.latency.append(stats.latency)

    def link(self, t: float, link: LinkRecord) -> None:
        if link.up:
            self.links_up += 1
            if self.down_at is not None:
                self.s.reconnects += 1
                self.s.downtime_s += t - self.down_at
                self.down_at = None
            self.event(t, "link up")
            return
        self.down_at = t
        if link.error is None and link.code is None:
            self.event(t, "link closed (disconnect() or generation_ended)")
            return
        how = f"code {link.code}" if link.code is not None else "no close code"
        self.event(t, f"link down ({how}{', ' + link.error if link.error else ''})")

    def session(self, t: float, info: SessionInfo) -> None:
        self.s.server_sessions += 1
        self.clock.reset()
        self.last_tick = None  # a new server session: its ticks restart, gaps too
        self.event(t, f"server session {info.sid}")

    def error(self, t: float, error: RealtimeError) -> None:
        name = type(error).__name__
        self.s.errors[name] = self.s.errors.get(name, 0) + 1
        self.event(t, _short(f"error {name}: {error}"))

    def sent(self, t: float, frame: p.ClientMessage) -> None:
        if isinstance(frame, p.PromptMessage):
            self.s.prompts.append(PromptResult(round(t, 6), frame.prompt, None))
            self.event(t, _short(f"prompt {frame.prompt!r} sent"))
        elif isinstance(frame, p.SetImageMessage):
            what = "cleared" if frame.image_data is None else frame.image_data.strip("<>")
            self.event(t, f"image sent ({what})")
        elif isinstance(frame, p.Offer):
            self.event(t, "offer sent")

    def prompt_ack(self, t: float, ack: p.PromptAck) -> None:
        for i, result in enumerate(self.s.prompts):
            if result.success is None and result.prompt == ack.prompt:
                self.s.prompts[i] = PromptResult(result.t, result.prompt, ack.success, ack.error)
                break
        answer = "ok" if ack.success else f"rejected: {ack.error}"
        self.event(t, _short(f"prompt ack {ack.prompt!r} {answer}"))

    def finish(self) -> None:
        self.fold()
        self.s.latency = _latency_summary(self.latency)
        self.s.billed_s = self.clock.total
        self.s.downtime_s = round(self.s.downtime_s, 6)
        # a stall is known at the tick that ends it: put it where it began
        self.s.timeline.sort(key=lambda e: e.t)


def _latency_summary(figures: list[GlassToGlass]) -> LatencySummary | None:
    """The latency of a tape's stats records (see :class:`LatencySummary`)."""
    if not figures:
        return None
    measured = [g for g in figures if g.samples and g.p50_s is not None and g.p90_s is not None]
    p50s = [g.p50_s for g in measured if g.p50_s is not None]
    p90s = [g.p90_s for g in measured if g.p90_s is not None]
    first = next((g.first_frame_s for g in figures if g.first_frame_s is not None), None)
    return LatencySummary(
        records=len(measured),
        p50_s=round(statistics.median(p50s), 4) if p50s else None,
        p90_s=round(statistics.median(p90s), 4) if p90s else None,
        worst_p90_s=max(p90s) if p90s else None,
        samples=max(g.samples for g in figures),
        first_frame_s=first,
        source=next((g.source for g in reversed(measured) if g.source), None),
    )


def _stall_limit(tape: Tape) -> float | None:
    """How long without a tick is a stall: :data:`STALL_FACTOR` typical tick intervals
    (the median gap between ticks of one server session); ``None`` with too few ticks."""
    gaps, last = [], None
    for r in tape.records:
        if r.kind == "session_started":
            last = None
        elif r.kind == "in" and isinstance(r.value, p.GenerationTick):
            if last is not None:
                gaps.append(r.t - last)
            last = r.t
    typical = statistics.median(gaps) if len(gaps) >= 2 else 0.0
    return STALL_FACTOR * typical if typical > 0 else None


def summarize(tape: Tape) -> TapeSummary:
    """The figures and timeline of ``tape`` (see the module docstring)."""
    h = tape.header
    summary = TapeSummary(
        path=tape.path,
        format=h.format,
        rxrealtime=h.rxrealtime,
        model=h.model.name,
        tier=h.tier,
        url=h.url,
        started_at=h.started_at,
        video=h.video,
        complete=tape.complete,
        problem=str(tape.problem) if tape.problem else None,
        duration_s=round(tape.duration_s, 6),
        records=len(tape.records),
    )
    builder = _Builder(summary, _stall_limit(tape))
    for record in tape.records:
        builder.record(record)
    builder.finish()
    summary.errors = dict(Counter(summary.errors).most_common())
    return summary
