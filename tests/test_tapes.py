"""Tapes without a server: the format, bad tapes, and replays in virtual time.

The bundled tape (``examples/tapes/demo.tape.jsonl``, a real 30 s recording with a
dropped socket, a stall and a rejected prompt) drives the replay and pipeline tests;
tapes of any shape are written with the format's own encoders.
"""

from __future__ import annotations

import gzip
import time
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from reactivex.testing import ReactiveTest, TestScheduler

import rxrealtime as rt
from rxrealtime import operators as rto
from rxrealtime import protocol as p
from rxrealtime.diagnostics import Reconnected
from rxrealtime.exceptions import register_secret
from rxrealtime.states import SessionInfo
from rxrealtime.tapes import Replay, TapeError
from rxrealtime.tapes.format import (
    LinkRecord,
    ModelInfo,
    TapeHeader,
    encode_frames,
    encode_header,
    encode_records,
)

DEMO = Path(__file__).resolve().parents[1] / "examples" / "tapes" / "demo.tape.jsonl"
S = rt.ConnectionState
on_next, on_completed = ReactiveTest.on_next, ReactiveTest.on_completed


def write_tape(
    path: Path, records: list[tuple[float, str, Any]], end: bool = True, tier: str | None = None
) -> Path:
    """A tape of ``records`` (offset, kind, value), as the recorder writes them."""
    header = TapeHeader(model=ModelInfo(name="lucy-2.6"), url="ws://127.0.0.1:9/v1/stream",
                        started_at="2025-01-01T00:00:00+00:00", tier=tier)  # fmt: skip
    tail = [(records[-1][0] if records else 0.0, "end", {"records": len(records) + 1})]
    data = encode_header(header) + encode_records([*records, *(tail if end else [])])
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as fh:
        fh.write(data)
    return path


def session_records(ticks: int, interval: float = 1.0) -> list[tuple[float, str, Any]]:
    """A session that connects, generates ``ticks`` ticks and disconnects."""
    info = SessionInfo(sid="s1", ip="127.0.0.1", port=9, subscribe_token="tok")
    out: list[tuple[float, str, Any]] = [
        (0.0, "state", "disconnected"), (0.0, "state", "connecting"),
        (0.01, "session_started", info), (0.02, "state", "connected"),
        (0.02, "link", LinkRecord(up=True)), (0.03, "in", p.GenerationStarted()),
        (0.03, "generation_started", p.GenerationStarted()), (0.03, "state", "generating"),
    ]  # fmt: skip
    out += [(round(0.03 + i * interval, 6), "in", p.GenerationTick(seconds=i))
            for i in range(1, ticks + 1)]  # fmt: skip
    last = out[-1][0]
    out += [(last + 0.5, "state", "disconnected"), (last + 0.5, "link", LinkRecord(up=False))]
    return out


def nexts(observer: Any) -> list[tuple[float, Any]]:
    """The (time, value) of each on_next an observer got."""
    return [(m.time, m.value.value) for m in observer.messages if m.value.kind == "N"]


def observer_of(messages: list[Any]) -> Any:
    """Recorded messages, shaped like an observer (for :func:`nexts`)."""

    class Observed:
        pass

    observed = Observed()
    observed.messages = messages  # type: ignore[attr-defined]
    return observed


def observe(replay: Replay, scheduler: TestScheduler, stream: str) -> Any:
    observer = scheduler.create_observer()
    replay.streams[stream].subscribe(observer)
    return observer


# -- the bundled tape, replayed in virtual time --------------------------------------


def test_the_bundled_tape_is_a_complete_real_recording() -> None:
    tape = rt.tapes.load(DEMO)
    summary = rt.tapes.summarize(tape)
    assert tape.complete and tape.problem is None and tape.header.model.name == "mirage_v2"
    assert "api_key=***" in tape.header.url
    assert (summary.ticks, summary.billed_s, summary.server_sessions) == (23, 26, 2)
    assert (summary.reconnects, len(summary.stalls)) == (1, 1)
    assert summary.errors == {"ConnectionLost": 1, "RequestRejected": 1}
    assert [r.success for r in summary.prompts] == [True, True, True, False]


@pytest.mark.parametrize(
    "stream",
    ["generation_ticks", "connection_changes", "errors", "session_started", "prompt_acks",
     "messages", "sent", "generation_started", "diagnostics", "ack_latencies"],
)  # fmt: skip
def test_a_replay_emits_what_the_recorded_helper_says(stream: str) -> None:
    scheduler = TestScheduler()
    replay = rt.tapes.replay(DEMO, scheduler=scheduler)
    observer = observe(replay, scheduler, stream)
    scheduler.start()
    assert observer.messages == rt.tapes.recorded(DEMO, stream)
    assert len(observer.messages) > 1 and replay.closed


def test_replay_speed_and_start_time_scale_virtual_time() -> None:
    scheduler = TestScheduler()
    replay = rt.tapes.replay(DEMO, scheduler=scheduler, speed=10.0, start_at=200.0)
    observer = observe(replay, scheduler, "generation_ticks")
    scheduler.start()
    expected = rt.tapes.recorded(DEMO, "generation_ticks", speed=10.0, start_at=200.0)
    assert observer.messages == expected
    assert 200 < expected[0].time < expected[-1].time < 200 + 3.0  # 30 s of tape in 3 s


def test_a_replay_is_session_like() -> None:
    scheduler = TestScheduler()
    replay = rt.tapes.replay(DEMO, scheduler=scheduler)
    assert replay.model.name == "mirage_v2" and replay.state is S.DISCONNECTED
    assert replay.scheduler is scheduler and replay.session_id is None
    scheduler.advance_to(5.0)
    assert replay.state is S.GENERATING and replay.session_id is not None
    assert replay.position_s == pytest.approx(5.0)
    scheduler.start()
    assert replay.closed and replay.state is S.DISCONNECTED
    assert "Replay" in repr(replay) and "api_key=***" in replay.url


# -- operators on a replay, unchanged -------------------------------------------------


async def test_a_budget_pipeline_on_the_bundled_tape_in_virtual_time() -> None:
    scheduler = TestScheduler()
    replay = rt.tapes.replay(DEMO, scheduler=scheduler)
    billed = replay.generation_ticks.pipe(rto.billed_seconds(resets=replay.session_started))
    totals, alerts, stalls = (scheduler.create_observer() for _ in range(3))
    billed.subscribe(totals)
    billed.pipe(rto.budget_alert(limit_s=20, rate_per_second="0.05")).subscribe(alerts)
    replay.generation_ticks.pipe(
        rto.stall_detector(3.0, states=replay.connection_changes, scheduler=replay.scheduler)
    ).subscribe(stalls)
    guard = scheduler.create_observer()
    billed.pipe(rto.budget_guard(replay, limit_s=24)).subscribe(guard)

    await replay.play()  # advances the TestScheduler instant by instant

    ticks = [t for t, _ in nexts(observer_of(rt.tapes.recorded(DEMO, "generation_ticks")))]
    values = [v for _, v in nexts(totals)]
    assert values[:9] == [1, 2, 3, 4, 5, 6, 7, 8, 9]  # continuous across the reconnect
    assert [(a.threshold, a.billed_s, a.cost) for _, a in nexts(alerts)] == [
        (0.5, 10, Decimal("0.50")), (0.8, 16, Decimal("0.80")), (1.0, 20, Decimal("1.00")),
    ]  # fmt: skip
    assert [t for t, _ in nexts(alerts)] == [ticks[9], ticks[15], ticks[16]]
    assert [t for t, _ in nexts(stalls)] == [pytest.approx(ticks[15] + 3.0)]
    ((tripped, exceeded),) = nexts(guard)
    assert exceeded.billed_s == 24 and tripped == ticks[20]
    # the guard's stop is recorded, at the virtual time it tripped, and ends the replay
    assert replay.disconnect_requests == [pytest.approx(ticks[20])]
    assert replay.closed and replay.state is S.DISCONNECTED
    assert values[-1] == 24  # nothing after the stop


def test_a_one_hour_tape_replays_in_milliseconds(tmp_path: Path) -> None:
    path = write_tape(tmp_path / "hour.tape.jsonl", session_records(3600))
    scheduler = TestScheduler()
    replay = rt.tapes.replay(path, scheduler=scheduler)
    billed = scheduler.create_observer()
    replay.generation_ticks.pipe(rto.billed_seconds(resets=replay.session_started)).subscribe(
        billed
    )
    started = time.perf_counter()
    scheduler.start()
    elapsed = time.perf_counter() - started
    ((last_time, last),) = nexts(billed)[-1:]
    assert last == 3600 and last_time > 3600
    assert elapsed < 2.0, f"an hour of tape took {elapsed:.2f} s"


# -- the format --------------------------------------------------------------------


def test_frames_of_one_instant_share_a_line_prefix_and_read_back(tmp_path: Path) -> None:
    ticks = [p.GenerationTick(seconds=i) for i in range(1, 4)]
    data = encode_frames(ticks, 1.5)
    assert data.splitlines() == [b'[1.5,"in",{"type":"generation_tick","seconds":%d}]' % i
                                 for i in (1, 2, 3)]  # fmt: skip
    mixed = encode_frames([ticks[0], p.ErrorMessage(error="boom")], 2.0)
    assert mixed.splitlines()[1] == b'[2.0,"in",{"type":"error","error":"boom"}]'


def test_secrets_and_images_never_reach_the_bytes() -> None:
    key = "rt_tape_test_key_0123456789"
    register_secret(key)
    turn = p.TurnConfig(username="u", credential="turn-credential-xyz", server_url="turn:x")
    room = p.LivekitRoomInfo(livekit_url="ws://x", token="eyJroomtoken", room_name="r")
    image = p.SetImageMessage(image_data="QUJD" * 1000, prompt="a cat")
    data = encode_records([
        (0.0, "in", p.ErrorMessage(error=f"invalid api key {key}")),
        (0.1, "in", p.IceRestart(turn_config=turn)), (0.2, "in", room), (0.3, "out", image),
        (0.4, "error", rt.ServerError(f"echo {key.upper()}")),
        (0.5, "out", p.PromptMessage(prompt=f"key={key}")),
    ])  # fmt: skip
    for secret in (key, key.upper(), "turn-credential-xyz", "eyJroomtoken", "QUJDQUJD"):
        assert secret.encode() not in data
    assert b'"image_data":3000' in data and b'"credential":"***"' in data


def test_a_gzip_tape_reads_back(tmp_path: Path) -> None:
    path = write_tape(tmp_path / "s.tape.jsonl.gz", session_records(5))
    tape = rt.tapes.load(path)
    ticks = [r.value.seconds for r in tape.records if isinstance(r.value, p.GenerationTick)]
    assert tape.complete and ticks == [1, 2, 3, 4, 5]


def test_a_cut_gzip_tape_reads_up_to_its_last_whole_line(tmp_path: Path) -> None:
    whole = write_tape(tmp_path / "w.tape.jsonl.gz", session_records(50))
    cut = tmp_path / "cut.tape.jsonl.gz"
    cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) * 2 // 3])
    tape = rt.tapes.load(cut, strict=False)
    assert 0 < len(tape.records) < 50 and not tape.complete


# -- bad tapes ----------------------------------------------------------------------


def test_missing_empty_and_directory_tapes_are_one_line_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.tape.jsonl"
    empty.write_bytes(b"")
    for path, text in ((tmp_path / "nope.tape.jsonl", "no such file"), (empty, "empty file"),
                       (tmp_path, "is a directory")):  # fmt: skip
        with pytest.raises(TapeError, match=text) as caught:
            rt.tapes.load(path)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    assert isinstance(caught.value, rt.RealtimeError)


def test_not_a_tape(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(TapeError, match=r"notes.txt:1: not a tape"):
        rt.tapes.load(path)


# -- the speed tier in the header (format 2) -------------------------------------------


def test_the_header_carries_the_tier_and_a_replay_is_priced_at_it(tmp_path: Path) -> None:
    path = write_tape(tmp_path / "fast.tape.jsonl", session_records(10), tier="fast")
    tape = rt.tapes.load(path)
    assert tape.header.format == rt.tapes.FORMAT_VERSION == 2 and tape.header.tier == "fast"
    assert b'"tier":"fast"' in path.read_bytes().splitlines()[0]
    summary = rt.tapes.summarize(tape)
    assert summary.tier == "fast" and "  model       lucy-2.6, tier fast" in summary.render()
    scheduler = TestScheduler()
    replay = rt.tapes.replay(tape, scheduler=scheduler)
    assert replay.tier == "fast"  # what it was billed at; replay.speed is how fast it plays
    cost = rto.cost(prices={"lucy-2.6": "0.01"}, model=replay.model.name, tier=replay.tier)
    observer = scheduler.create_observer()
    replay.generation_ticks.pipe(rto.billed_seconds(resets=replay.session_started), cost).subscribe(
        observer
    )
    scheduler.start()
    assert nexts(observer)[-1][1] == Decimal("0.20")  # 10 fast seconds at 2 x 0.01


def test_a_format_1_tape_without_a_tier_reads_as_standard(tmp_path: Path) -> None:
    tape = rt.tapes.load(DEMO)  # recorded by rxrealtime 0.1.0: format 1, no tier
    assert tape.header.format == 1 and tape.header.tier is None
    assert rt.tapes.replay(tape, scheduler=TestScheduler()).tier == "standard"
    summary = rt.tapes.summarize(tape)
    assert summary.tier is None and summary.as_json()["tier"] is None
    assert "tier not recorded (format 1 tape: priced as standard)" in summary.render()
    # A format 1 header written by hand (no tier field at all) reads the same way.
    old = tmp_path / "old.tape.jsonl"
    lines = write_tape(tmp_path / "v.tape.jsonl", session_records(2)).read_bytes().splitlines()
    header = lines[0].replace(b'"rxrealtime_tape":2', b'"rxrealtime_tape":1')
    old.write_bytes(header.replace(b',"tier":null', b"") + b"\n" + b"\n".join(lines[1:]) + b"\n")
    assert b"tier" not in old.read_bytes().splitlines()[0]
    assert rt.tapes.load(old).header.tier is None


async def test_the_recorder_writes_the_sessions_tier(tmp_path: Path) -> None:
    rt.models.reset_warnings()
    for model, speed, tier in (("lucy-2.6", "fast", "fast"), ("lucy-2.6", None, "standard"),
                               ("lucy-2.1", "fast", "standard")):  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # lucy-2.1 offers no fast tier
            session = rt.Session("ws://127.0.0.1:9", api_key="k", model=model, speed=speed)
        path = tmp_path / f"{model}-{speed}.tape.jsonl"
        await rt.tapes.TapeRecorder(session, path).start().close()
        assert rt.tapes.load(path).header.tier == tier == session.tier


def test_a_tape_from_a_newer_format_says_which_version_it_needs(tmp_path: Path) -> None:
    path = tmp_path / "new.tape.jsonl"
    path.write_text('{"rxrealtime_tape": 7, "rxrealtime": "9.0.0"}\n')
    with pytest.raises(TapeError, match=r"tape format 7 needs a newer rxrealtime .*9\.0\.0"):
        rt.tapes.load(path)


def test_a_corrupt_line_is_named_and_strict_false_replays_the_prefix(tmp_path: Path) -> None:
    path = write_tape(tmp_path / "bad.tape.jsonl", session_records(6))
    lines = path.read_bytes().splitlines(keepends=True)
    lines[12] = b'[7.0,"in",{"type":"generation_tick","seconds":"many"}]\n'
    path.write_bytes(b"".join(lines))
    with pytest.raises(TapeError, match=r"bad\.tape\.jsonl:13: bad record: .*seconds"):
        rt.tapes.load(path)
    scheduler = TestScheduler()
    replay = rt.tapes.replay(path, scheduler=scheduler, strict=False)
    ticks, errors = observe(replay, scheduler, "generation_ticks"), observe(replay, scheduler,
                                                                            "errors")  # fmt: skip
    scheduler.start()
    assert [t.seconds for _, t in nexts(ticks)] == [1, 2, 3]
    ((_, problem),) = nexts(errors)
    assert isinstance(problem, TapeError) and problem.line == 13
    assert errors.messages == rt.tapes.recorded(path, "errors", strict=False)


def test_a_cut_last_line_and_offsets_going_back_are_named(tmp_path: Path) -> None:
    path = write_tape(tmp_path / "cut.tape.jsonl", session_records(3), end=False)
    data = path.read_bytes()
    path.write_bytes(data[:-20])
    with pytest.raises(TapeError, match=r":\d+: bad record \(cut off: the recording was"):
        rt.tapes.load(path)
    back = write_tape(tmp_path / "back.tape.jsonl", [(1.0, "state", "connecting"),
                                                     (0.5, "state", "connected")])  # fmt: skip
    with pytest.raises(TapeError, match=r"back\.tape\.jsonl:3: offset 0\.5 s goes back"):
        rt.tapes.load(back)


def test_unknown_kinds_and_error_types(tmp_path: Path) -> None:
    path = write_tape(tmp_path / "k.tape.jsonl", [(0.0, "teleport", 1)])
    with pytest.raises(TapeError, match="unknown record kind 'teleport'"):
        rt.tapes.load(path)
    path.write_bytes(
        path.read_bytes().splitlines(keepends=True)[0]
        + b'[0.0,"error",{"type":"FluxError","message":"flux"}]\n'
        + b'[0.1,"diagnostics",{"type":"Reconnected","attempts":1,"downtime_s":0.5}]\n'
    )
    error, diagnostic = (r.value for r in rt.tapes.load(path).records)
    assert type(error) is rt.RealtimeError and str(error) == "FluxError: flux"
    assert diagnostic == Reconnected(attempts=1, downtime_s=0.5)


def test_a_real_time_replay_needs_a_loop_or_a_scheduler() -> None:
    with pytest.raises(rt.ConfigError, match="running asyncio loop"):
        rt.tapes.replay(DEMO)
    with pytest.raises(rt.ConfigError, match="speed"):
        rt.tapes.replay(DEMO, scheduler=TestScheduler(), speed=0)


async def test_a_real_time_replay_at_high_speed_keeps_tape_time(tmp_path: Path) -> None:
    path = write_tape(tmp_path / "fast.tape.jsonl", session_records(5, interval=0.5))
    replay = rt.tapes.replay(path, speed=50.0)
    assert isinstance(replay.scheduler, rt.tapes.TapeTimeScheduler)
    ticks: list[int] = []
    replay.generation_ticks.subscribe(lambda t: ticks.append(t.seconds))
    stalls: list[Any] = []  # 0.3 s of tape without a tick: each 0.5 s gap is one
    replay.generation_ticks.pipe(
        rto.stall_detector(0.3, states=replay.connection_changes, scheduler=replay.scheduler)
    ).subscribe(stalls.append)
    started = time.monotonic()
    await replay.wait_closed()
    assert ticks == [1, 2, 3, 4, 5] and replay.closed
    assert len(stalls) >= 4 and time.monotonic() - started < 1.0  # 3 s of tape in ~0.06 s


def test_the_tapes_bench_suite_runs(tmp_path: Path) -> None:
    from rxrealtime.cli.bench import Config, run_suites

    (doc,) = run_suites(["tapes"], Config(quick=True, repeats=1), tmp_path, log=print)
    rows = {row["name"]: row["median"] for row in doc["rows"]}
    assert rows["replay on TestScheduler -> budget pipeline"] > 1000  # events/s
    assert (tmp_path / "tapes.json").is_file() and doc["targets"][0]["met"]
