"""Tapes of real sessions against the embedded server: replayed in virtual time they
match what was seen live, served back they give a fresh client the same ticks, a killed
recorder leaves a readable tape, and no secret ever reaches one."""

from __future__ import annotations

import asyncio
import base64
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until
from reactivex.testing import TestScheduler

import rxrealtime as rt
from rxrealtime import operators as rto
from rxrealtime import protocol as p

FAST_RETRY = rt.ReconnectPolicy(initial_delay_s=0.05, max_delay_s=0.2)


def small_track() -> Any:
    return rt.media.SyntheticTrack(width=96, height=64, fps=10)


@dataclass
class Seen:
    """What one session's subscribers saw."""

    states: list[rt.ConnectionState] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ticks: list[int] = field(default_factory=list)
    billed: list[int] = field(default_factory=list)
    sessions: int = 0

    @classmethod
    def watch(cls, session: Any) -> Seen:
        seen = cls()
        session.connection_changes.subscribe(seen.states.append)
        session.errors.subscribe(lambda e: seen.errors.append(type(e).__name__))
        session.generation_ticks.subscribe(lambda t: seen.ticks.append(t.seconds))
        session.generation_ticks.pipe(rto.billed_seconds(resets=session.session_started)).subscribe(
            seen.billed.append
        )

        def started(_: object) -> None:
            seen.sessions += 1

        session.session_started.subscribe(started)
        return seen


async def record_faulty_session(path: Path) -> Seen:
    """Two dropped sockets, a stall of the third server session and a rejected prompt."""
    faults = rt.Faults(drop_socket_after_s=0.45, max_drops=2, stall_ticks_after=6,
                       stall_ticks_for_s=0.5)  # fmt: skip
    async with rt.serve_embedded(tick_interval_s=0.1, faults=faults) as server:
        session = rt.Session(server.url, api_key=server.api_key, reconnect=FAST_RETRY)
        seen = Seen.watch(session)
        async with rt.tapes.record(session, path, flush_interval_s=0.2):
            async with session.connect(local_track=small_track(), prompt="anime"):
                await wait_until(lambda: seen.sessions == 3 and seen.ticks[-1] >= 13)
                server.faults.fail_acks = True
                with pytest.raises(rt.RequestRejected):
                    await session.set_prompt("nope")
                server.faults.fail_acks = False
                ticks = len(seen.ticks)
                await wait_until(lambda: len(seen.ticks) >= ticks + 2)
        assert server.counters["socket_drops"] == 2 and server.counters["stalls"] == 1
    return seen


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seen]:
    path = tmp_path_factory.mktemp("tapes") / "faulty.tape.jsonl"
    return path, asyncio.run(record_faulty_session(path))


def test_a_replay_in_virtual_time_equals_the_live_session(faulty: tuple[Path, Seen]) -> None:
    path, live = faulty
    assert live.errors == ["ConnectionLost", "ConnectionLost", "RequestRejected"]
    assert live.states.count(rt.ConnectionState.RECONNECTING) == 2
    scheduler = TestScheduler()
    replay = rt.tapes.replay(path, scheduler=scheduler)
    seen = Seen.watch(replay)
    stalls = scheduler.create_observer()
    replay.generation_ticks.pipe(
        rto.stall_detector(0.35, states=replay.connection_changes, scheduler=replay.scheduler)
    ).subscribe(stalls)
    scheduler.start()
    assert seen.billed[-1] == live.billed[-1]
    assert seen.states == live.states
    assert seen.errors == live.errors
    assert seen.ticks == live.ticks and seen.sessions == 3
    assert len([m for m in stalls.messages if m.value.kind == "N"]) == 1  # the stall, replayed
    summary = rt.tapes.summarize(rt.tapes.load(path))
    assert (summary.reconnects, len(summary.stalls), summary.billed_s) == (2, 1, live.billed[-1])


async def test_a_served_tape_gives_a_fresh_client_the_same_ticks(
    faulty: tuple[Path, Seen],
) -> None:
    path, live = faulty
    async with rt.serve_embedded(tape=path) as server:
        session = rt.Session(server.url, api_key=server.api_key, reconnect=FAST_RETRY)
        seen = Seen.watch(session)
        async with session.connect(local_track=small_track(), prompt="anime"):
            await wait_until(lambda: len(seen.ticks) >= len(live.ticks))
            with pytest.raises(rt.RequestRejected, match="fault injection"):  # as recorded
                await session.set_prompt("nope")
        assert server.counters["socket_drops"] == 2
    assert seen.ticks == live.ticks
    assert seen.billed[-1] == live.billed[-1]
    assert seen.errors == live.errors
    assert seen.states == live.states


async def test_no_secret_and_no_image_reaches_a_tape(tmp_path: Path) -> None:
    path = tmp_path / "secret.tape.jsonl.gz"
    image = b"\x89PNG not really an image, but private" * 20
    async with rt.serve_embedded(tick_interval_s=0.1) as server:
        server.faults.ice_restart_after_s = 0.2
        session = rt.Session(server.url, api_key=server.api_key, stats_interval_s=0.2)
        seen = Seen.watch(session)
        async with rt.tapes.record(session, path, stats=True):
            async with session.connect(local_track=small_track(), prompt="anime"):
                await session.set_image(image)
                await wait_until(lambda: server.counters.get("ice_restarts", 0) == 1)
                await wait_until(lambda: len(seen.ticks) >= 6)
                await server.send_raw(p.encode(p.GenerationTick(seconds=99_999)).decode())
                await wait_until(lambda: "ProtocolError" in seen.errors)
        key = server.api_key
    import gzip

    data = gzip.decompress(path.read_bytes())
    for secret in (key, key.upper(), "turn-secret", base64.b64encode(image)[:40].decode()):
        assert secret.encode() not in data
    tape = rt.tapes.load(path)
    (restart,) = [r.value for r in tape.records if isinstance(r.value, p.IceRestart)]
    assert restart.turn_config.credential == "***"
    (sent,) = [r.value for r in tape.records if isinstance(r.value, p.SetImageMessage)]
    assert sent.image_data == f"<image of {len(image)} bytes>"
    # the tick the client refused is on messages, not on generation_ticks
    (refused,) = [r for r in tape.records if r.kind == "refused"]
    assert refused.value.seconds == 99_999
    replayed = Seen.watch(replay := rt.tapes.replay(tape, scheduler=(sch := TestScheduler())))
    messages: list[Any] = []
    replay.messages.subscribe(messages.append)
    stats: list[Any] = []
    replay.stats.subscribe(stats.append)
    sch.start()
    assert replayed.ticks == seen.ticks and 99_999 not in replayed.ticks
    assert p.GenerationTick(seconds=99_999) in messages
    assert stats and all(isinstance(s, rt.quality.SessionStats) for s in stats)  # stats=True


KILLED_RECORDER = textwrap.dedent(
    """
    import asyncio, sys
    import rxrealtime as rt

    async def main():
        async with rt.serve_embedded(tick_interval_s=0.05) as server:
            session = rt.Session(server.url, api_key=server.api_key)
            ticks = []
            session.generation_ticks.subscribe(ticks.append)
            recorder = rt.tapes.TapeRecorder(session, sys.argv[1], flush_interval_s=0.1).start()
            await session.connect(local_track=rt.media.SyntheticTrack(width=96, height=64))
            while len(ticks) < 5 or recorder.records_written < 20:
                await asyncio.sleep(0.02)
            print(recorder.records_written, flush=True)
            await asyncio.sleep(60)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("name", ["killed.tape.jsonl", "killed.tape.jsonl.gz"])
def test_a_killed_recorder_leaves_a_tape_readable_to_its_last_flush(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    child = subprocess.Popen([sys.executable, "-c", KILLED_RECORDER, str(path)],
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert child.stdout is not None
        flushed = int(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    tape = rt.tapes.load(path)
    assert not tape.complete and len(tape.records) >= flushed
    ticks = [r.value.seconds for r in tape.records if isinstance(r.value, p.GenerationTick)]
    assert ticks[:5] == [1, 2, 3, 4, 5]
    assert "incomplete" in rt.tapes.summarize(tape).render()
