"""decode: ns per frame of ``protocol.decode`` against the ways others parse the same frames.

Contenders, on the realistic mix of :data:`~._frames.MIX` (90 % ``generation_tick``):

* ``protocol.decode``: ours, public: the module-level msgspec decoder inside a Python
  function that turns every failure into ``ProtocolError``;
* ``protocol.decode_unchecked``: the same decoder called directly, as the session's read
  loop does (it falls back to ``decode`` only for a frame that fails);
* ``pydantic(json.loads)``: ``json.loads`` then a pydantic discriminated union, the
  vendor SDK's way;
* ``pydantic validate_json``: the same union parsing the text itself;
* ``json.loads + dict dispatch``: untyped dicts routed by ``type`` (no validation);

and, on ``generation_tick`` frames only (the only input it accepts), the limit: a msgspec
decoder for the single ``GenerationTick`` struct, next to ``protocol.decode`` on the
same tick-only input so that ratio compares like with like.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import msgspec

from ... import protocol as p
from ._common import Config, SuiteResult, interleaved, ratio_per_repeat, summary
from ._frames import frame_mix, tick_frames, vendor_adapter

__all__ = ["run"]


def _loop(fn: Callable[[str], object], frames: list[str]) -> Callable[[int], int]:
    """A timed body: ``fn`` over every frame, ``loops`` times; the loop is the same for all."""

    def run(loops: int) -> int:
        for _ in range(loops):
            for frame in frames:
                fn(frame)
        return loops * len(frames)

    return run


def contenders(frames: list[str], ticks: list[str]) -> dict[str, Callable[[int], int]]:
    """Each contender as a timed body; names are what the tables show."""
    adapter = vendor_adapter()
    validate_python, validate_json = adapter.validate_python, adapter.validate_json
    loads = json.loads
    handlers: dict[str, Callable[[dict[str, Any]], object]] = {
        kind: (lambda d: d)
        for kind in (
            "answer",
            "ice-candidate",
            "session_id",
            "ready",
            "prompt_ack",
            "set_image_ack",
            "generation_started",
            "generation_tick",
            "generation_ended",
            "queue_position",
            "ice-restart",
            "error",
        )
    }

    def pydantic_loads(frame: str) -> object:
        return validate_python(loads(frame))

    def loads_dispatch(frame: str) -> object:
        data = loads(frame)
        return handlers[data["type"]](data)

    tick_limit = msgspec.json.Decoder(p.GenerationTick).decode
    return {
        "protocol.decode": _loop(p.decode, frames),
        "protocol.decode_unchecked (read loop)": _loop(p.decode_unchecked, frames),
        "pydantic(json.loads)": _loop(pydantic_loads, frames),
        "pydantic validate_json": _loop(validate_json, frames),
        "json.loads + dict dispatch": _loop(loads_dispatch, frames),
        "protocol.decode [ticks]": _loop(p.decode, ticks),
        "protocol.decode_unchecked (read loop) [ticks]": _loop(p.decode_unchecked, ticks),
        "limit: Decoder(GenerationTick) [ticks]": _loop(tick_limit, ticks),
    }


def check_agreement(frames: list[str]) -> None:
    """Every contender must read the same values, or the timings compare nothing."""
    adapter = vendor_adapter()
    for frame in frames:
        ours = msgspec.to_builtins(p.decode(frame))
        theirs = adapter.validate_json(frame).model_dump(exclude_none=True)
        ours = {k: v for k, v in ours.items() if v is not None}
        if isinstance(ours.get("candidate"), dict):
            ours["candidate"] = {k: v for k, v in ours["candidate"].items() if v is not None}
        if ours != theirs:
            raise AssertionError(f"contenders disagree on {frame}: {ours} != {theirs}")


def run(config: Config) -> SuiteResult:
    started = time.perf_counter()
    repeats = config.reps(full=9, quick=3)
    frames, ticks = frame_mix(1000), tick_frames(1000)
    check_agreement(frames)
    result = SuiteResult(
        suite="decode",
        title="decode: ns per frame (text frame -> typed message)",
        quick=config.quick,
        repeats=repeats,
        method=(
            "1000 str frames (90% generation_tick, rest ice-candidate/prompt_ack/"
            "queue_position/session_id/generation_started/set_image_ack); each contender "
            "loops over them for >= 0.2 s (0.02 s quick) per repeat, contenders interleaved "
            "in rotating order; ratios are taken within each repeat. '[ticks]' rows run on "
            "1000 generation_tick frames."
        ),
    )
    times = interleaved(contenders(frames, ticks), repeats, 0.02 if config.quick else 0.2)
    for name, values in times.items():
        stat = summary(values)
        fps = summary([1e9 / v for v in values])
        result.row(name, "ns/frame", stat, frames_per_s=fps["median"])
    ours = times["protocol.decode"]
    for other in ("pydantic(json.loads)", "pydantic validate_json", "json.loads + dict dispatch"):
        result.ratio(
            f"{other} / protocol.decode",
            ratio_per_repeat(times[other], ours),
            "how many times faster ours is (higher is better)",
        )
    at_limit = times["limit: Decoder(GenerationTick) [ticks]"]
    public = ratio_per_repeat(times["protocol.decode [ticks]"], at_limit)
    limit = ratio_per_repeat(times["protocol.decode_unchecked (read loop) [ticks]"], at_limit)
    result.ratio(
        "protocol.decode / single-struct limit [ticks]",
        public,
        "public decode (with ProtocolError translation) vs the limit (1.0 = at the limit)",
    )
    result.ratio(
        "read-loop decoder / single-struct limit [ticks]",
        limit,
        "decode_unchecked, what the signaling read loop calls, vs the limit (1.0 = at the limit)",
    )
    vs_pydantic = result.ratios[0]["median"]
    result.target(
        "decode >= 15x the pydantic json.loads path",
        vs_pydantic,
        ">= 15",
        vs_pydantic >= 15,
    )
    result.target(
        "public protocol.decode within 1.3x of the single-struct limit",
        public["median"],
        "<= 1.3",
        public["median"] <= 1.3,
        "same tick-only input; a Python function that turns msgspec's errors into "
        "ProtocolError around the module's decoder (one frame per call)",
    )
    result.target(
        "read-loop decoder within 1.3x of the single-struct limit",
        limit["median"],
        "<= 1.3",
        limit["median"] <= 1.3,
        "decode_unchecked, the decoder's own C method, which the signaling read loop calls",
    )
    result.elapsed_s = time.perf_counter() - started
    return result
