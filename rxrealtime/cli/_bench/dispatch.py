"""dispatch: from frame text to subscribers, through the session's own streams.

Two groups, each with 1 subscriber, 10 subscribers, and one subscriber behind a
3-operator pipeline (``map`` -> ``filter`` -> ``scan``):

* **emit**: a decoded tick handed to ``HotStream.emit`` (our stream), to
  ``reactivex.subject.Subject.on_next`` and to a bare list of callbacks (the pipeline as
  one hand-fused function: the floor);
* **frame -> subscriber**: ``protocol.decode_unchecked`` + ``FrameRouter.route`` exactly as
  the read loop calls them (``messages`` then the per-type stream), against the same routing
  with msgspec + ``Subject`` streams, against pydantic (``json.loads`` +
  discriminated union) + callback lists, and against the limit: the single-struct msgspec
  decoder + a callback list.

Input: ``generation_tick`` frames (the frames that reach subscribers many times a second).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import msgspec
from reactivex import Observable
from reactivex import operators as ops
from reactivex.subject import Subject

from ... import protocol as p
from ...asyncio.signaling import CheckedTicks, FrameRouter
from ...models import DEFAULT_MODEL
from ...session import Session
from ...streams import HotStream
from ._common import Config, SuiteResult, interleaved, ratio_per_repeat, summary
from ._frames import tick_frames, vendor_adapter

__all__ = ["run"]

SHAPES = ("1 subscriber", "10 subscribers", "3-operator pipeline")


class _Counter:
    """A subscriber that only counts, so delivery can be checked after timing."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, _value: object) -> None:
        self.n += 1


def _seconds(tick: p.GenerationTick) -> int:
    return tick.seconds


def _not_negative(seconds: int) -> bool:
    return seconds >= 0


def _add(total: int, seconds: int) -> int:
    return total + seconds


Group = tuple[dict[str, Callable[[int], int]], dict[str, list[_Counter]]]


def _rx_attach(stream: Observable[Any], shape: str) -> list[_Counter]:
    sinks = [_Counter() for _ in range(10 if shape == "10 subscribers" else 1)]
    for sink in sinks:
        if shape == "3-operator pipeline":
            stream.pipe(
                ops.map(_seconds),
                ops.filter(_not_negative),
                ops.scan(_add, 0),
            ).subscribe(sink)
        else:
            stream.subscribe(sink)
    return sinks


def _callbacks(shape: str) -> tuple[list[Callable[[Any], None]], list[_Counter]]:
    sinks = [_Counter() for _ in range(10 if shape == "10 subscribers" else 1)]
    if shape != "3-operator pipeline":
        return list(sinks), sinks
    sink, total = sinks[0], [0]

    def fused(tick: Any) -> None:  # map -> filter -> scan by hand, same functions
        seconds = _seconds(tick)
        if _not_negative(seconds):
            total[0] = _add(total[0], seconds)
            sink(total[0])

    return [fused], sinks


def _emit_group(shape: str, frames: list[str]) -> Group:
    values = [p.decode(f) for f in frames]
    hot: HotStream[Any] = HotStream("bench")
    subject: Subject[Any] = Subject()
    callbacks, cb_sinks = _callbacks(shape)
    sinks = {
        "HotStream.emit": _rx_attach(hot, shape),
        "Subject.on_next": _rx_attach(subject, shape),
        "callback list": cb_sinks,
    }

    def body(emit: Callable[[Any], None]) -> Callable[[int], int]:
        def run(loops: int) -> int:
            for _ in range(loops):
                for value in values:
                    emit(value)
            return loops * len(values)

        return run

    def call_all(value: Any) -> None:
        for callback in callbacks:
            callback(value)

    bodies: dict[str, Callable[[int], int]] = {
        "HotStream.emit": body(hot.emit),
        "Subject.on_next": body(subject.on_next),
        "callback list": body(call_all),
    }
    return bodies, sinks


def _path_group(shape: str, frames: list[str]) -> Group:
    decode = p.decode_unchecked  # what the signaling read loop calls
    session = Session("ws://127.0.0.1:9", api_key="bench-key", model=DEFAULT_MODEL)
    # The session's own routing for ticks (checked by its TickGuard, as on a link); the
    # read loop inlines FrameRouter.route.
    checked = CheckedTicks(session.generation_ticks, session.errors, max_step_s=60)
    handlers: dict[type, Callable[[Any], None]] = {p.GenerationTick: checked}
    dispatch = FrameRouter(handlers, session.messages, session.errors).route

    messages: Subject[Any] = Subject()
    ticks: Subject[Any] = Subject()
    subject_handlers: dict[type, Callable[[Any], None]] = {p.GenerationTick: ticks.on_next}

    adapter = vendor_adapter()
    validate_python, loads = adapter.validate_python, json.loads
    vendor_tick = type(adapter.validate_json(frames[0]))
    cb_list, cb_sinks = _callbacks(shape)
    message_callbacks: list[Callable[[Any], None]] = []

    def on_tick(value: Any) -> None:
        for callback in cb_list:
            callback(value)

    cb_handlers: dict[type, Callable[[Any], None]] = {vendor_tick: on_tick}
    tick_limit = msgspec.json.Decoder(p.GenerationTick).decode
    limit_list, limit_sinks = _callbacks(shape)

    sinks = {
        "ours: decode + FrameRouter.route": _rx_attach(session.generation_ticks, shape),
        "msgspec + Subject streams": _rx_attach(ticks, shape),
        "pydantic + callback list": cb_sinks,
        "limit: tick decoder + callback list": limit_sinks,
    }

    def ours(loops: int) -> int:
        for _ in range(loops):
            for frame in frames:
                dispatch(decode(frame))
        return loops * len(frames)

    def with_subjects(loops: int) -> int:
        on_message, handlers = messages.on_next, subject_handlers
        for _ in range(loops):
            for frame in frames:
                message = decode(frame)
                on_message(message)
                handler = handlers.get(type(message))
                if handler is not None:
                    handler(message)
        return loops * len(frames)

    def with_pydantic(loops: int) -> int:
        for _ in range(loops):
            for frame in frames:
                message = validate_python(loads(frame))
                for callback in message_callbacks:
                    callback(message)
                handler = cb_handlers.get(type(message))
                if handler is not None:
                    handler(message)
        return loops * len(frames)

    def at_limit(loops: int) -> int:
        for _ in range(loops):
            for frame in frames:
                tick = tick_limit(frame)
                for callback in limit_list:
                    callback(tick)
        return loops * len(frames)

    bodies: dict[str, Callable[[int], int]] = {
        "ours: decode + FrameRouter.route": ours,
        "msgspec + Subject streams": with_subjects,
        "pydantic + callback list": with_pydantic,
        "limit: tick decoder + callback list": at_limit,
    }
    return bodies, sinks


def _check_delivery(
    bodies: dict[str, Callable[[int], int]], sinks: dict[str, list[_Counter]]
) -> None:
    """One pass of every contender must reach every one of its subscribers once per frame."""
    for name, body in bodies.items():
        before = [s.n for s in sinks[name]]
        items = body(1)
        got = [s.n - b for s, b in zip(sinks[name], before, strict=True)]
        if any(g != items for g in got):
            raise AssertionError(f"{name}: subscribers got {got}, expected {items} each")


def run(config: Config) -> SuiteResult:
    started = time.perf_counter()
    repeats = config.reps(full=7, quick=3)
    min_s = 0.01 if config.quick else 0.08
    frames = tick_frames(1000)
    result = SuiteResult(
        suite="dispatch",
        title="dispatch: ns per frame to subscribers",
        quick=config.quick,
        repeats=repeats,
        method=(
            "1000 generation_tick frames per pass; subscribers count values; each group "
            "(emit / frame->subscriber x 1 sub / 10 subs / map-filter-scan pipeline) is "
            "timed side by side, contenders interleaved in rotating order, >= "
            f"{min_s} s per contender per repeat; ratios are taken within each repeat."
        ),
    )
    for group, build in (("emit", _emit_group), ("frame -> subscriber", _path_group)):
        for shape in SHAPES:
            bodies, sinks = build(shape, frames)
            _check_delivery(bodies, sinks)
            times = interleaved(bodies, repeats, min_s)
            for name, values in times.items():
                result.row(f"{group} | {shape} | {name}", "ns/frame", summary(values))
            if group == "emit":
                ours, subject = times["HotStream.emit"], times["Subject.on_next"]
                result.ratio(
                    f"emit | {shape} | Subject / HotStream",
                    ratio_per_repeat(subject, ours),
                    "how many times faster our stream is than a Subject",
                )
                result.ratio(
                    f"emit | {shape} | HotStream / callback list",
                    ratio_per_repeat(ours, times["callback list"]),
                    "our stream's overhead over the bare floor (1.0 = none)",
                )
            else:
                ours = times["ours: decode + FrameRouter.route"]
                for other in (
                    "pydantic + callback list",
                    "msgspec + Subject streams",
                ):
                    result.ratio(
                        f"path | {shape} | {other} / ours",
                        ratio_per_repeat(times[other], ours),
                        "how many times faster ours is (higher is better)",
                    )
                result.ratio(
                    f"path | {shape} | ours / limit",
                    ratio_per_repeat(ours, times["limit: tick decoder + callback list"]),
                    "how many times slower ours is than the limit",
                )
    one = next(r for r in result.ratios if r["name"] == "path | 1 subscriber | pydantic + "
               "callback list / ours")  # fmt: skip
    result.target(
        "decode + dispatch to one subscriber >= 5x pydantic + callback list",
        one["median"],
        ">= 5",
        one["median"] >= 5,
    )
    subject_cost = next(
        r for r in result.rows if r["name"] == "emit | 1 subscriber | Subject.on_next"
    )
    result.extra["subject_on_next_ns_1_subscriber"] = subject_cost["median"]
    result.elapsed_s = time.perf_counter() - started
    return result
