"""tapes: replaying a tape in virtual time, reading one, and what recording costs.

* **replay**: a synthetic hour of a session (ticks every 0.1 s: 36,000 ticks, 10 minutes
  with ``--quick``) replayed on reactivex's ``TestScheduler`` into
  ``billed_seconds(resets=session_started)`` -> ``budget_alert``: events per second of
  wall-clock time, and how long the hour took;
* **load**: reading and checking the same tape (``rt.tapes.load``), lines per second;
* **record**: ``messages.emit`` of a tick with no subscriber (what a session without a
  recorder pays: nothing is emitted) and with a :class:`~rxrealtime.tapes.TapeRecorder`
  subscribed (its hot path), interleaved; and the flush's encoding, per record.

The end-to-end cost of recording (a real session over loopback, with and without a
tape) is in the e2e suite.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from reactivex.testing import TestScheduler

from ... import operators as rto
from ... import protocol as p
from ...models import DEFAULT_MODEL
from ...session_streams import SessionStreams
from ...states import SessionInfo
from ...tapes import TapeRecorder, load, replay
from ...tapes.format import LinkRecord, ModelInfo, TapeHeader, encode_header, encode_records
from ._common import Config, SuiteResult, interleaved, summary

__all__ = ["run", "write_session_tape"]


def write_session_tape(path: Path, ticks: int, interval_s: float) -> int:
    """A tape of one session generating ``ticks`` ticks; returns its record count."""
    info = SessionInfo(sid="bench", ip="127.0.0.1", port=9, subscribe_token="t")
    records: list[tuple[float, str, Any]] = [
        (0.0, "state", "connecting"), (0.01, "session_started", info),
        (0.02, "state", "connected"), (0.02, "link", LinkRecord(up=True)),
        (0.03, "in", p.GenerationStarted()), (0.03, "state", "generating"),
    ]  # fmt: skip
    records += [(round(0.03 + i * interval_s, 6), "in", p.GenerationTick(seconds=i // 10 + 1))
                for i in range(1, ticks + 1)]  # fmt: skip
    end = records[-1][0] + 0.5
    records += [(end, "state", "disconnected"), (end, "end", {"records": len(records) + 2})]
    header = TapeHeader(model=ModelInfo(name=DEFAULT_MODEL), url="ws://127.0.0.1:9/v1/stream",
                        started_at="2025-01-01T00:00:00+00:00")  # fmt: skip
    path.write_bytes(encode_header(header) + encode_records(records))
    return len(records)


def _replay_once(path: Path) -> tuple[float, int]:
    """Seconds to replay the whole tape through a budget pipeline; events emitted."""
    tape = load(path)
    scheduler = TestScheduler()
    session = replay(tape, scheduler=scheduler)
    alerts: list[Any] = []
    session.generation_ticks.pipe(
        rto.billed_seconds(resets=session.session_started), rto.budget_alert(limit_s=600)
    ).subscribe(alerts.append)
    started = time.perf_counter()
    scheduler.start()
    elapsed = time.perf_counter() - started
    assert session.closed and len(alerts) == 3, "the replay did not run to its end"
    return elapsed, len(tape.records)


def _record_contenders(folder: Path) -> tuple[dict[str, Any], TapeRecorder, SessionStreams]:
    frames = [p.GenerationTick(seconds=i) for i in range(1, 1001)]
    bare, recorded = SessionStreams(), SessionStreams()
    recorder = TapeRecorder(recorded, folder / "hot.tape.jsonl", flush_interval_s=3600)
    recorder.start()

    def emit_to(streams: SessionStreams, flush: bool) -> Any:
        messages = streams.messages

        def run(loops: int) -> int:
            for _ in range(loops):
                for frame in frames:
                    if messages.observers:  # what the session's read loop does
                        messages.emit(frame)
                if flush:
                    recorder.flush()
            return loops * len(frames)

        return run

    contenders = {"no recorder": emit_to(bare, False), "TapeRecorder": emit_to(recorded, True)}
    return contenders, recorder, recorded


async def _record_costs(config: Config, result: SuiteResult, folder: Path) -> None:
    contenders, recorder, streams = _record_contenders(folder)
    repeats = config.reps(full=9, quick=2)
    runs = interleaved(contenders, repeats, 0.02 if config.quick else 0.2)
    result.row("messages.emit of a tick, no recorder (nothing subscribed)", "ns/frame",
               summary(runs["no recorder"]))  # fmt: skip
    result.row("messages.emit of a tick to a TapeRecorder, its flush included", "ns/frame",
               summary(runs["TapeRecorder"]))  # fmt: skip
    costs = []
    for _ in range(repeats):
        for i in range(1, 10_001):
            streams.messages.emit(p.GenerationTick(seconds=i))
        started = time.perf_counter_ns()
        written = recorder.flush()
        costs.append((time.perf_counter_ns() - started) / written)
    result.row("of which the flush (encode + write), per tick", "ns/record", summary(costs))
    await recorder.close()


def run(config: Config) -> SuiteResult:
    started = time.perf_counter()
    minutes = 10 if config.quick else 60
    repeats = config.reps(full=7, quick=2)
    result = SuiteResult(
        suite="tapes",
        title="tapes: replay in virtual time, load, record",
        quick=config.quick,
        repeats=repeats,
        method=(
            f"a synthetic tape of one session with a tick every 0.1 s for {minutes} minutes, "
            "replayed on a TestScheduler into billed_seconds -> budget_alert (events/s of "
            "wall-clock time) and read with rt.tapes.load (lines/s); the recorder's hot "
            "path (messages.emit to a TapeRecorder, vs no subscriber) interleaved in rotating "
            "order, and its flush per record."
        ),
    )
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        path = folder / "hour.tape.jsonl"
        records = write_session_tape(path, ticks=minutes * 600, interval_s=0.1)
        replays, loads = [], []
        for _ in range(repeats):
            elapsed, events = _replay_once(path)
            replays.append((elapsed, events))
            t0 = time.perf_counter()
            load(path)
            loads.append(records / (time.perf_counter() - t0))
        result.row("replay on TestScheduler -> budget pipeline", "events/s",
                   summary([events / elapsed for elapsed, events in replays]))  # fmt: skip
        result.row(f"replay of {minutes} min of tape", "ms",
                   summary([elapsed * 1000 for elapsed, _ in replays]))  # fmt: skip
        result.row("rt.tapes.load", "lines/s", summary(loads))
        asyncio.run(_record_costs(config, result, folder))
    best = min(elapsed for elapsed, _ in replays)
    result.target(f"{minutes} min of tape replays in < 1 s", best, "< 1 s", best < 1.0)
    result.extra["records"] = records
    result.elapsed_s = time.perf_counter() - started
    return result
