"""imports: what ``import rxrealtime`` and its light entry points cost, in fresh processes.

Each repeat starts a new interpreter (``sys.executable -c``) that times one import with
``time.perf_counter`` and lists what it pulled in, so nothing is ever warm in
``sys.modules``; the disk cache is warm after the first repeat, as it is for a user
who runs a script twice. One more interpreter per entry point runs with
``-X importtime`` for the slowest modules under it (cumulative), the "where does the
time go" view.

Targets: ``rxrealtime.protocol`` and ``rxrealtime.operators`` under 50 ms and
``rxrealtime`` under 250 ms, and none of them loading aiortc, aiohttp, av or numpy
(those load when a session connects or the server starts).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from ._common import Config, SuiteResult, summary

__all__ = ["run"]

ENTRY_POINTS = {"rxrealtime": 250.0, "rxrealtime.protocol": 50.0, "rxrealtime.operators": 50.0}
HEAVY = ("aiortc", "aiohttp", "av", "numpy")
FIRST_USE = {
    "rxrealtime.operators + a first operator": (
        "import rxrealtime.operators as rto; rto.billed_seconds()"
    ),
    "rxrealtime + a Session": (
        "import rxrealtime as rt; rt.Session('ws://127.0.0.1:9', api_key='k', model='lucy-2.6')"
    ),
}
"""What the lazy imports defer, timed the same way (no target: the cost moved, it did not
vanish, and a program that uses these pays it once)."""
_PROBE = """
import sys, time, json
start = time.perf_counter()
{code}
took = time.perf_counter() - start
print(json.dumps({{"ms": took * 1000, "modules": sorted(sys.modules)}}))
"""


def _timed_import(module: str) -> tuple[float, list[str]]:
    code = FIRST_USE.get(module, f"import {module}")
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(code=code)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    doc = json.loads(out.splitlines()[-1])
    return float(doc["ms"]), list(doc["modules"])


def slowest_imports(module: str, top: int = 6) -> list[tuple[str, float]]:
    """The ``top`` modules with the largest cumulative ``-X importtime`` under ``module``
    (the module itself first), in ms."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    rows: list[tuple[str, float]] = []
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((parts[2].rstrip(), int(parts[1]) / 1000))
    rows.sort(key=lambda row: row[1], reverse=True)
    return [(name.strip(), ms) for name, ms in rows[:top]]


def run(config: Config) -> SuiteResult:
    started = time.perf_counter()
    repeats = config.reps(full=9, quick=2)
    result = SuiteResult(
        suite="imports",
        title="imports: fresh-interpreter import time",
        quick=config.quick,
        repeats=repeats,
        method=(
            f"each repeat is a new `{sys.executable.rsplit('/', 1)[-1]} -c` that times "
            "one import with perf_counter and lists sys.modules; entry points interleave "
            "in rotating order; `-X importtime` once per entry point for the slowest "
            "modules (cumulative ms)."
        ),
    )
    names = [*ENTRY_POINTS, *FIRST_USE]
    times: dict[str, list[float]] = {name: [] for name in names}
    loaded: dict[str, list[str]] = {}
    for rep in range(repeats):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            ms, modules = _timed_import(name)
            times[name].append(ms)
            loaded[name] = modules
    for name, limit in ENTRY_POINTS.items():
        stat = summary(times[name])
        heavy = [m for m in HEAVY if m in loaded[name]]
        result.row(
            f"import {name}", "ms", stat, modules=len(loaded[name]), heavy=",".join(heavy) or "-"
        )
        slowest = result.extra.setdefault("slowest", {})[name] = slowest_imports(name)
        biggest = next(((m, ms) for m, ms in slowest if m != name), None)
        note = f"largest part: {biggest[0]} {biggest[1]:.0f} ms (-X importtime)" if biggest else ""
        result.target(
            f"import {name} < {limit:g} ms",
            stat["median"],
            f"< {limit:g}",
            stat["median"] < limit,
            note,
        )
        what = "/".join(HEAVY)
        result.target(f"import {name} loads no {what}", len(heavy), "0", not heavy, ",".join(heavy))
    for name in FIRST_USE:
        heavy = [m for m in HEAVY if m in loaded[name]]
        stat = summary(times[name])
        result.row(name, "ms", stat, modules=len(loaded[name]), heavy=",".join(heavy) or "-")
    result.elapsed_s = time.perf_counter() - started
    return result
