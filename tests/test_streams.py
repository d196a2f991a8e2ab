"""Hot streams alone: delivery, isolation, completion, replay and the async bridges."""

from __future__ import annotations

import asyncio

import pytest
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler

import rxrealtime as rt
from rxrealtime import protocol as p
from rxrealtime.streams import HotStream, LatestStream, StateStream


def test_values_reach_every_subscriber_in_order() -> None:
    stream: HotStream[int] = HotStream("s")
    a: list[int] = []
    b: list[int] = []
    stream.subscribe(a.append)
    stream.subscribe(b.append)
    for i in range(3):
        stream.emit(i)
    assert a == b == [0, 1, 2]


def test_hot_stream_does_not_replay_to_late_subscribers() -> None:
    stream: HotStream[int] = HotStream("s")
    stream.emit(1)
    late: list[int] = []
    stream.subscribe(late.append)
    stream.emit(2)
    assert late == [2]


def test_disposed_subscriber_gets_nothing_more() -> None:
    stream: HotStream[int] = HotStream("s")
    got: list[int] = []
    subscription = stream.subscribe(got.append)
    stream.emit(1)
    subscription.dispose()
    stream.emit(2)
    assert got == [1]
    assert stream.subscriber_count == 0


def test_raising_subscriber_is_isolated_and_reported() -> None:
    reported: list[tuple[str, Exception]] = []
    stream: HotStream[int] = HotStream("ticks", lambda name, exc: reported.append((name, exc)))
    before: list[int] = []
    after: list[int] = []
    stream.subscribe(before.append)
    stream.subscribe(lambda v: 1 / 0)
    stream.subscribe(after.append)
    stream.emit(1)
    stream.emit(2)
    assert before == after == [1, 2]
    assert [name for name, _ in reported] == ["ticks", "ticks"]
    assert all(isinstance(exc, ZeroDivisionError) for _, exc in reported)


def test_deliver_follows_the_subscribers() -> None:
    """``deliver`` is what the read loop calls per tick: nothing, the lone subscriber's own
    function, or ``emit`` for several; it must change with every (un)subscribe."""
    stream: HotStream[int] = HotStream("ticks")
    assert stream.deliver is None
    first: list[int] = []
    d1 = stream.subscribe(first.append)
    assert stream.deliver == first.append  # the user's function, no wrapper frame
    second: list[int] = []
    d2 = stream.subscribe(second.append)
    assert stream.deliver == stream.emit
    d1.dispose()
    assert stream.deliver == second.append
    d2.dispose()
    assert stream.deliver is None
    stream.subscribe(first.append)
    stream.complete()
    assert stream.deliver is None and stream.observers == ()


def test_deliver_of_a_stream_that_keeps_its_value_is_always_emit() -> None:
    # A hot path that calls deliver must not skip what StateStream/LatestStream keep.
    state: StateStream[int] = StateStream("state", 0)
    latest: LatestStream[int] = LatestStream("latest")
    for stream in (state, latest):
        assert stream.deliver == stream.emit
        seen: list[int] = []
        stream.subscribe(seen.append)
        assert stream.deliver == stream.emit
    assert state.deliver is not None and latest.deliver is not None
    state.deliver(5)
    latest.deliver(7)
    assert state.value == 5 and latest.latest == 7


def test_raising_operator_in_a_pipeline_is_isolated() -> None:
    reported: list[Exception] = []
    stream: HotStream[int] = HotStream("s", lambda name, exc: reported.append(exc))
    other: list[int] = []
    stream.pipe(ops.map(lambda v: 10 // v)).subscribe(lambda v: None)
    stream.subscribe(other.append)
    stream.emit(0)
    stream.emit(5)
    assert other == [0, 5]
    assert len(reported) == 1 and isinstance(reported[0], ZeroDivisionError)


def test_failing_error_sink_does_not_break_delivery() -> None:
    def sink(name: str, exc: Exception) -> None:
        raise RuntimeError("sink broke")

    stream: HotStream[int] = HotStream("s", sink)
    got: list[int] = []
    stream.subscribe(lambda v: 1 / 0)
    stream.subscribe(got.append)
    stream.emit(7)
    assert got == [7]


def test_complete_ends_current_and_late_subscribers() -> None:
    stream: HotStream[int] = HotStream("s")
    done: list[str] = []
    stream.subscribe(on_completed=lambda: done.append("early"))
    stream.complete()
    stream.complete()  # idempotent
    stream.subscribe(on_completed=lambda: done.append("late"))
    stream.emit(1)
    assert done == ["early", "late"]
    assert stream.completed


def test_state_stream_replays_current_value_and_skips_repeats() -> None:
    state = StateStream("state", "disconnected")
    first: list[str] = []
    state.subscribe(first.append)
    state.emit("connecting")
    state.emit("connecting")
    state.emit("connected")
    second: list[str] = []
    state.subscribe(second.append)
    assert first == ["disconnected", "connecting", "connected"]
    assert second == ["connected"]
    assert state.value == "connected"


def test_reactivex_operators_accept_hot_streams_in_virtual_time() -> None:
    scheduler = TestScheduler()
    stream: HotStream[p.GenerationTick] = HotStream("ticks")
    for t, seconds in ((210, 1), (220, 2), (300, 3), (310, 4)):
        scheduler.schedule_absolute(t, lambda *_, s=seconds: stream.emit(p.GenerationTick(s)))
    scheduler.schedule_absolute(400, lambda *_: stream.complete())
    result = scheduler.start(
        lambda: stream.pipe(
            ops.map(lambda tick: tick.seconds),
            ops.throttle_first(50, scheduler=scheduler),
        )
    )
    assert result.messages == [
        ReactiveTest.on_next(210, 1),
        ReactiveTest.on_next(300, 3),
        ReactiveTest.on_completed(400),
    ]


async def test_async_for_yields_values_until_completion() -> None:
    stream: HotStream[int] = HotStream("s")

    async def produce() -> None:
        for i in range(3):
            await asyncio.sleep(0)
            stream.emit(i)
        stream.complete()

    task = asyncio.ensure_future(produce())
    got = [v async for v in stream]
    await task
    assert got == [0, 1, 2]


async def test_breaking_out_of_async_for_unsubscribes() -> None:
    stream: HotStream[int] = HotStream("s")
    asyncio.get_running_loop().call_soon(stream.emit, 1)
    async for value in stream:
        assert value == 1
        break
    for _ in range(5):  # the loop's async-generator finalizer closes the iterator
        await asyncio.sleep(0)
    assert stream.subscriber_count == 0


async def test_async_for_works_on_piped_observables() -> None:
    stream: HotStream[int] = HotStream("s")
    loop = asyncio.get_running_loop()
    for i in range(4):
        loop.call_soon(stream.emit, i)
    loop.call_soon(stream.complete)
    got = [v async for v in rt.values(stream.pipe(ops.filter(lambda v: v % 2 == 0)))]
    assert got == [0, 2]


async def test_next_awaits_the_next_value() -> None:
    stream: HotStream[str] = HotStream("s")
    asyncio.get_running_loop().call_later(0.01, stream.emit, "hello")
    assert await stream.next(timeout=1) == "hello"
    assert stream.subscriber_count == 0


async def test_next_times_out_and_fails_on_completion() -> None:
    stream: HotStream[str] = HotStream("s")
    with pytest.raises(TimeoutError):
        await stream.next(timeout=0.01)
    asyncio.get_running_loop().call_soon(stream.complete)
    with pytest.raises(rt.SessionClosed):
        await stream.next(timeout=1)


async def test_next_on_state_stream_returns_current_value() -> None:
    state = StateStream("state", "connected")
    assert await rt.next_value(state) == "connected"


# -- bounded async iteration and latest-value replay ---------------------------------


async def test_async_for_holds_at_most_maxsize_values_dropping_the_oldest() -> None:
    stream: HotStream[int] = HotStream("s")
    iterator = rt.values(stream, maxsize=3)
    first = asyncio.ensure_future(iterator.__anext__())  # subscribes
    await asyncio.sleep(0)
    for i in range(10):  # a slow consumer: nothing read while 10 values arrive
        stream.emit(i)
    stream.complete()
    assert await first == 7  # 0..6 were dropped: memory stays bounded
    assert [v async for v in iterator] == [8, 9]


async def test_keep_latest_iteration_sees_only_the_newest_value() -> None:
    stream: HotStream[int] = HotStream("s")
    iterator = rt.values(stream, overflow="keep_latest")
    first = asyncio.ensure_future(iterator.__anext__())
    await asyncio.sleep(0)
    for i in range(5):
        stream.emit(i)
    stream.complete()
    assert await first == 4
    assert [v async for v in iterator] == []


async def test_bad_bounds_are_clear_errors() -> None:
    with pytest.raises(rt.ConfigError, match="maxsize"):
        rt.values(HotStream("s"), maxsize=-1)
    with pytest.raises(rt.ConfigError, match="overflow"):
        rt.values(HotStream("s"), overflow="sometimes")  # type: ignore[arg-type]


def test_latest_stream_replays_its_last_value_and_publishes_every_value() -> None:
    stream: LatestStream[int] = LatestStream("latest")
    early: list[int] = []
    stream.subscribe(early.append)
    stream.emit(1)
    stream.emit(1)  # equal values still publish (unlike a state stream)
    late: list[int] = []
    stream.subscribe(late.append)
    stream.emit(2)
    assert early == [1, 1, 2] and late == [1, 2] and stream.latest == 2
    stream.complete()
    after: list[int] = []
    stream.subscribe(after.append)
    assert after == []


def test_a_new_stream_has_nothing_to_replay() -> None:
    seen: list[int] = []
    LatestStream[int]("empty").subscribe(seen.append)
    assert seen == []
