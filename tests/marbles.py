"""Marble scenarios: one list that ``tests/test_marbles.py`` asserts and the docs draw.

Each :class:`Marble` is a small virtual-time scenario of one operator of
:mod:`rxrealtime.operators`: hot input streams (records of
``reactivex.testing.ReactiveTest``), the expression under test (the Python text shown on
the operator's page, evaluated as is) and the records it must produce. The test runs
every scenario with ``TestScheduler`` and compares; the docs build (``tools/docs/``) runs
the same scenarios and draws what the operator *actually* emitted, so a change of
behaviour changes the picture, and the test says so first.

Times are ``TestScheduler`` ticks: the subscription happens at 200, and the time-based
operators read one tick as one second. Keep values short (they are drawn in a marble)
and events at least 10 apart (they are drawn on one line).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from reactivex import Observable
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.recorded import Recorded

from rxrealtime import operators as rto
from rxrealtime.operators import BudgetAlert, BudgetExceeded, BurnRate, IdleStop, Projection, Stall
from rxrealtime.protocol import GenerationTick
from rxrealtime.quality import ConnectionQuality, SessionStats

__all__ = ["MARBLES", "SUBSCRIBED", "DisconnectRecorder", "Marble", "by_operator", "label", "run"]

on_next, on_completed = ReactiveTest.on_next, ReactiveTest.on_completed
T = GenerationTick
SUBSCRIBED = 200
"""When ``TestScheduler.start`` subscribes: time 0 of every diagram."""


class DisconnectRecorder:
    """Stands in for a Session's ``disconnect()``, the budget guard's only contact."""

    def __init__(self) -> None:
        self.calls = 0

    async def disconnect(self) -> None:
        self.calls += 1


@dataclass(frozen=True)
class Marble:
    """One diagram: ``expression`` over ``inputs`` must give ``expected``."""

    id: str
    """File name of the diagram (``docs/operators`` shows ``marbles/<id>.svg``)."""
    operator: str
    """The name in ``rxrealtime.operators`` this scenario shows."""
    caption: str
    inputs: Mapping[str, list[Recorded[Any]]]
    """Hot input streams by the name the expression uses; the first is the piped source."""
    expression: str
    """Python evaluated with the inputs, ``rto``, ``scheduler`` and ``session`` in scope."""
    expected: list[Recorded[Any]]
    disconnects: int | None = None
    """How many times ``session.disconnect()`` must have been called (budget_guard)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Lane titles to show instead of the input names."""


def run(marble: Marble) -> tuple[list[Recorded[Any]], DisconnectRecorder]:
    """Run ``marble`` in virtual time (inside an event loop, as a session's code runs)."""

    async def scenario() -> tuple[list[Recorded[Any]], DisconnectRecorder]:
        scheduler = TestScheduler()
        session = DisconnectRecorder()
        sources = {
            name: scheduler.create_hot_observable(*records)
            for name, records in marble.inputs.items()
        }
        scope: dict[str, Any] = {"rto": rto, "scheduler": scheduler, "session": session}
        scope.update(sources)

        def create() -> Observable[Any]:
            return eval(marble.expression, {"__builtins__": {}}, scope)  # type: ignore[no-any-return]

        messages = scheduler.start(create).messages
        for _ in range(3):  # let a scheduled disconnect() run
            await asyncio.sleep(0)
        return messages, session

    return asyncio.run(scenario())


def label(value: Any) -> str:
    """The short text drawn in a marble for a value."""
    if isinstance(value, GenerationTick):
        return str(value.seconds)
    if isinstance(value, BudgetAlert):
        return f"{value.threshold:.0%}"
    if isinstance(value, BudgetExceeded):
        return f"stop {value.billed_s}s"
    if isinstance(value, Stall):
        return "stall"
    if isinstance(value, BurnRate):
        return f"{value.seconds_per_min:g}/min"
    if isinstance(value, Projection):
        return f"{value.used:.0%}" if value.used is not None else f"{value.billed_s}s"
    if isinstance(value, IdleStop):
        return "idle stop"
    if isinstance(value, SessionStats):
        return f"{value.rtt_s * 1000:.0f} ms" if value.rtt_s is not None else "stats"
    if isinstance(value, ConnectionQuality):
        return value.level
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Decimal):
        return str(value)
    return str(getattr(value, "value", value))


def _ticks(*pairs: tuple[int, int], end: int | None = None) -> list[Recorded[Any]]:
    records = [on_next(t, T(s)) for t, s in pairs]
    return [*records, on_completed(end)] if end is not None else records


def _rtt(ms: int) -> SessionStats:
    return SessionStats(interval_s=2.0, inbound_fps=20.0, outbound_fps=20.0, rtt_s=ms / 1000)


def _verdict(level: str, ms: int) -> ConnectionQuality:
    limiting = None if level == "good" else "rtt"
    return ConnectionQuality(level=level, limiting=limiting, rtt_s=ms / 1000, inbound_fps=20.0)  # type: ignore[arg-type]


def _budget(billed: int, per_min: float, used: float, left: float, eta: float | None) -> Any:
    """A projection against a 60 s budget."""
    return Projection(billed, per_min, per_min * 60, limit_s=60, used=used, remaining_s=left,
                      time_to_limit_s=eta)  # fmt: skip


def _values(*pairs: tuple[int, Any], end: int | None = None) -> list[Recorded[Any]]:
    records = [on_next(t, v) for t, v in pairs]
    return [*records, on_completed(end)] if end is not None else records


MARBLES: list[Marble] = [
    Marble(
        id="billed_seconds-reconnect",
        operator="billed_seconds",
        caption="Ticks are cumulative per server session; after a reconnect the new server "
        "session counts from 0 again (a drop), and the total carries on.",
        inputs={"ticks": _ticks((210, 1), (220, 2), (230, 3), (250, 1), (260, 2), end=270)},
        expression="ticks.pipe(rto.billed_seconds())",
        expected=_values((210, 1), (220, 2), (230, 3), (250, 4), (260, 5), end=270),
    ),
    Marble(
        id="billed_seconds-resets",
        operator="billed_seconds",
        caption="With resets (session.session_started), a lower tick inside one server "
        "session is a late, out-of-order tick: it bills 0, and a new server session is "
        "counted even when its first tick does not drop.",
        inputs={
            "ticks": _ticks((210, 1), (220, 3), (230, 2), (240, 4), (260, 4), end=270),
            "resets": _values((205, "a"), (250, "b")),
        },
        expression="ticks.pipe(rto.billed_seconds(resets=resets))",
        expected=_values((210, 1), (220, 3), (230, 3), (240, 4), (260, 8), end=270),
    ),
    Marble(
        id="tick_deltas",
        operator="tick_deltas",
        caption="Seconds billed by each tick: a duplicate bills 0, the first tick of a new "
        "server session bills its whole value; the deltas add up to billed_seconds.",
        inputs={"ticks": _ticks((210, 1), (220, 3), (230, 3), (250, 1), (260, 2), end=270)},
        expression="ticks.pipe(rto.tick_deltas())",
        expected=_values((210, 1), (220, 2), (230, 0), (250, 1), (260, 1), end=270),
    ),
    Marble(
        id="cost",
        operator="cost",
        caption="Billed seconds to exact Decimal money at 0.1 per second.",
        inputs={"billed": _values((210, 1), (220, 3), (240, 10), end=250)},
        expression='billed.pipe(rto.cost("0.1"))',
        expected=_values(
            (210, Decimal("0.1")), (220, Decimal("0.3")), (240, Decimal("1.0")), end=250
        ),
    ),
    Marble(
        id="budget_alert",
        operator="budget_alert",
        caption="One BudgetAlert per threshold of a 10 s limit (50 %, 80 %, 100 %), the "
        "first time billed seconds reach it, never twice.",
        inputs={"billed": _values((210, 3), (220, 6), (230, 6), (240, 9), (250, 12), end=260)},
        expression="billed.pipe(rto.budget_alert(limit_s=10))",
        expected=_values(
            (220, BudgetAlert(threshold=0.5, billed_s=6, limit_s=10)),
            (240, BudgetAlert(threshold=0.8, billed_s=9, limit_s=10)),
            (250, BudgetAlert(threshold=1.0, billed_s=12, limit_s=10)),
            end=260,
        ),
    ),
    Marble(
        id="budget_alert-jump",
        operator="budget_alert",
        caption="A jump past several thresholds emits one alert for each, lowest first.",
        inputs={"billed": _values((210, 1), (230, 9), end=250)},
        expression="billed.pipe(rto.budget_alert(limit_s=10))",
        expected=_values(
            (230, BudgetAlert(threshold=0.5, billed_s=9, limit_s=10)),
            (230, BudgetAlert(threshold=0.8, billed_s=9, limit_s=10)),
            end=250,
        ),
    ),
    Marble(
        id="budget_guard",
        operator="budget_guard",
        caption="At the 3 s limit: one BudgetExceeded, completion, and session.disconnect() "
        "is scheduled on the running loop.",
        inputs={"billed": _values((210, 1), (220, 2), (230, 3), (240, 4))},
        expression="billed.pipe(rto.budget_guard(session, limit_s=3))",
        expected=[on_next(230, BudgetExceeded(billed_s=3, limit_s=3)), on_completed(230)],
        disconnects=1,
    ),
    Marble(
        id="stall_detector",
        operator="stall_detector",
        caption="While generating, 10 s without a tick is a Stall, once per silence; the "
        "next tick re-arms the detector, and leaving generating stops the clock.",
        inputs={
            "ticks": _ticks((210, 1), (215, 2), (240, 3), end=290),
            "states": _values((205, "generating"), (260, "reconnecting")),
        },
        expression="ticks.pipe(rto.stall_detector(10, states=states))",
        expected=[
            on_next(225, Stall(silent_s=10.0, last_seconds=2)),
            on_next(250, Stall(silent_s=10.0, last_seconds=3)),
            on_completed(290),
        ],
    ),
    Marble(
        id="billing_rate",
        operator="billing_rate",
        caption="Billed seconds per minute over a 30 s window: rises with billing, and "
        "falls back to 0 as samples leave the window once billing stops.",
        inputs={"billed": _values((210, 0), (220, 5), (230, 10), (240, 10))},
        expression="billed.pipe(rto.billing_rate(30, scheduler=scheduler))",
        expected=_values(
            (210, 0.0), (220, 10.0), (230, 20.0), (240, 20.0), (250, 10.0), (260, 0.0)
        ),
    ),
    Marble(
        id="quality",
        operator="quality",
        caption="Stats (here their round-trip time) graded good, fair, poor or critical; a "
        "verdict is emitted only when the level or the limiting factor changes.",
        inputs={
            "stats": _values(
                (210, _rtt(50)),
                (220, _rtt(80)),
                (230, _rtt(200)),
                (240, _rtt(400)),
                (250, _rtt(100)),
                end=260,
            )
        },
        expression="stats.pipe(rto.quality())",
        expected=_values(
            (210, _verdict("good", 50)),
            (230, _verdict("fair", 200)),
            (240, _verdict("poor", 400)),
            (250, _verdict("good", 100)),
            end=260,
        ),
    ),
    Marble(
        id="burn_rate",
        operator="burn_rate",
        caption="Billed seconds per minute with their cost (at 0.01 per second): over the "
        "time seen until a 30 s window has passed, then like billing_rate; 0 once billing "
        "stops.",
        inputs={"billed": _values((210, 0), (220, 5), (230, 10), (240, 10))},
        expression='billed.pipe(rto.burn_rate(30, rate_per_second="0.01", scheduler=scheduler))',
        expected=_values(
            (210, BurnRate(0.0, Decimal("0.00"), 30.0)),
            (220, BurnRate(30.0, Decimal("0.3"), 30.0)),
            (230, BurnRate(30.0, Decimal("0.3"), 30.0)),
            (240, BurnRate(20.0, Decimal("0.2"), 30.0)),
            (250, BurnRate(10.0, Decimal("0.1"), 30.0)),
            (260, BurnRate(0.0, Decimal("0.00"), 30.0)),
        ),
    ),
    Marble(
        id="projection",
        operator="projection",
        caption="Against a 60 s budget: the share used, the seconds left and the time until "
        "they run out at the burn rate of the last 30 s.",
        inputs={"billed": _values((210, 0), (220, 10), (230, 20), (240, 30))},
        expression="billed.pipe(rto.projection(limit_s=60, window_s=30, scheduler=scheduler))",
        expected=_values(
            (210, _budget(0, 0.0, 0.0, 60.0, None)),
            (220, _budget(10, 60.0, 1 / 6, 50.0, 50.0)),
            (230, _budget(20, 60.0, 1 / 3, 40.0, 40.0)),
            (240, _budget(30, 60.0, 0.5, 30.0, 30.0)),
            (250, _budget(30, 40.0, 0.5, 30.0, 45.0)),
            (260, _budget(30, 20.0, 0.5, 30.0, 90.0)),
            (270, _budget(30, 0.0, 0.5, 30.0, None)),
        ),
    ),
    Marble(
        id="idle_guard",
        operator="idle_guard",
        caption="Generating with no prompt change and nobody watching the video for 30 s: "
        "the guard emits, completes and disconnects the session.",
        inputs={
            "ticks": _ticks((210, 1), (220, 2), (230, 3), (240, 4), (250, 5)),
            "prompts": _values((215, "ack")),
        },
        expression="ticks.pipe(rto.idle_guard(session, 30, activity=prompts, scheduler=scheduler))",
        expected=[on_next(245, IdleStop(idle_s=30.0, ticks=3)), on_completed(245)],
        disconnects=1,
        labels={"prompts": "prompt acks"},
    ),
]
"""Every scenario; each public operator function has at least one."""


def by_operator() -> dict[str, list[Marble]]:
    """The scenarios grouped by operator name, in list order."""
    grouped: dict[str, list[Marble]] = {}
    for marble in MARBLES:
        grouped.setdefault(marble.operator, []).append(marble)
    return grouped
