"""What every suite shares: summaries, side-by-side timing, and the result document.

A result is plain JSON-able data (``dict``/``list``/numbers) so it can be written,
re-read by the report writer and compared across runs without any class to import.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

__all__ = [
    "Config",
    "SuiteResult",
    "child_stdin",
    "interleaved",
    "machine_info",
    "percentile",
    "ratio_per_repeat",
    "reply",
    "summary",
]

Summary = dict[str, float]
"""``{"median", "min", "max", "n"}`` of one figure over repeats."""


@dataclass(frozen=True)
class Config:
    """How hard a run works: ``quick`` is for smoke tests and a first look."""

    quick: bool = False
    repeats: int | None = None

    def reps(self, full: int, quick: int) -> int:
        if self.repeats is not None:
            return max(1, self.repeats)
        return quick if self.quick else full


@dataclass
class SuiteResult:
    """The outcome of one suite: rows of figures, same-run ratios and target checks."""

    suite: str
    title: str
    quick: bool
    repeats: int
    method: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    ratios: list[dict[str, Any]] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def row(self, name: str, unit: str, stat: Summary, **extra: Any) -> None:
        self.rows.append({"name": name, "unit": unit, **stat, **extra})

    def ratio(self, name: str, stat: Summary, meaning: str) -> None:
        self.ratios.append({"name": name, "meaning": meaning, **stat})

    def target(self, name: str, value: float, threshold: str, met: bool, note: str = "") -> None:
        self.targets.append(
            {"target": name, "value": value, "threshold": threshold, "met": met, "note": note}
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "title": self.title,
            "quick": self.quick,
            "repeats": self.repeats,
            "method": self.method,
            "machine": machine_info(),
            "rows": self.rows,
            "ratios": self.ratios,
            "targets": self.targets,
            "extra": self.extra,
            "elapsed_s": round(self.elapsed_s, 2),
        }


def summary(values: Sequence[float]) -> Summary:
    """Median, min and max of the repeats (the median is what tables quote)."""
    if not values:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {
        "median": float(statistics.median(values)),
        "min": float(min(values)),
        "max": float(max(values)),
        "n": len(values),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return float(ordered[index])


def ratio_per_repeat(numerator: Sequence[float], denominator: Sequence[float]) -> Summary:
    """Summary of ``numerator[i] / denominator[i]``: each ratio is taken within one repeat."""
    return summary([a / b for a, b in zip(numerator, denominator, strict=True) if b])


def _calibrate(run: Callable[[int], int], min_s: float) -> int:
    """How many inner loops make one timed call last at least ``min_s`` seconds."""
    loops = 1
    while True:
        start = time.perf_counter()
        run(loops)
        elapsed = time.perf_counter() - start
        if elapsed >= min_s or loops >= 1 << 20:
            return loops
        loops = max(loops * 2, int(loops * min_s / max(elapsed, 1e-6) * 1.2))


def interleaved(
    contenders: Mapping[str, Callable[[int], int]], repeats: int, min_s: float
) -> dict[str, list[float]]:
    """ns per item of each contender, one figure per repeat, contenders run side by side.

    ``run(loops)`` processes some items ``loops`` times and returns how many items it
    processed. Within a repeat every contender runs once, in an order rotated each repeat,
    so slow drifts of a shared machine hit them alike; ratios are then taken per repeat.
    The garbage collector is collected before each timed call but left enabled, as it is
    in production.
    """
    names = list(contenders)
    loops = {name: _calibrate(contenders[name], min_s) for name in names}
    results: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeats):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            gc.collect()
            start = time.perf_counter_ns()
            items = contenders[name](loops[name])
            results[name].append((time.perf_counter_ns() - start) / items)
    return results


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    """The machine and the versions that matter to these figures."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": {
            d: _version(d)
            for d in ("rxrealtime", "msgspec", "pydantic", "reactivex", "aiohttp", "aiortc")
        },
    }


# -- the line protocol of a suite's child processes ------------------------------------


async def child_stdin(limit: int = 2**16) -> asyncio.StreamReader:
    """The child's stdin as a stream: the parent writes one JSON command a line."""
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=limit)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    return stdin


def reply(*values: Any) -> None:
    """One JSON line to the parent, flushed at once (it waits on it)."""
    sys.stdout.write(json.dumps(values) + "\n")
    sys.stdout.flush()
