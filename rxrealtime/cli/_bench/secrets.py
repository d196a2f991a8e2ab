"""secrets: what the secret registry costs a long-lived process.

A fleet worker or a dashboard lives for days; every session registers its API key and
every LiveKit link its room token, and releases them when it ends. The registry used to
grow with each registration and recompile one regex over all of them (100, 200 and 400
registrations of 240-character secrets took 1.3, 5.9 and 28 s). This suite measures:

* 10,000 register/release cycles of 240-character secrets (a :class:`SecretScope` each,
  as a session or a link does), and the registry's size after them;
* the same cycles with one :func:`redact_secrets` call each beside 100 live secrets (the
  registry's scan is rebuilt on the first redaction after a change);
* :func:`redact_secrets` per call with 1 and with 100 live secrets on three texts: an
  error naming a URL, a plain error, and a 1 KB JSON tape record.

Targets: the 10,000 cycles under 1 s, the registry back at its starting size, and the
redaction of a plain error no dearer with 100 live secrets than with 1 (within 1.5x).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from functools import partial

from ...exceptions import SecretScope, live_secret_count, redact_secrets
from ._common import Config, SuiteResult, summary

__all__ = ["run"]

CYCLES = 10_000
SECRET_CHARS = 240
TEXTS = {
    "error with a URL": (
        "ConnectionLost: cannot reach ws://127.0.0.1:8765/v1/stream?model=lucy-2.6&"
        "api_key=***&user_agent=rxrealtime/0.1: Connection refused (errno 111) while dialing"
    ),
    "plain error": "ConnectionLost: the peer connection failed (ICE state failed) after 3 tries",
    "1 KB JSON record": '{"type":"diagnostics","items":['
    + ",".join(f'{{"name":"n{i}","value":{i}.5,"unit":"ms"}}' for i in range(24))
    + "]}",
}


def _secrets(count: int, rng: random.Random) -> list[str]:
    """``count`` distinct hex secrets of :data:`SECRET_CHARS` characters, like room tokens."""
    return [rng.randbytes(SECRET_CHARS // 2).hex() for _ in range(count)]


def _cycles(secrets: list[str], redact: str | None) -> float:
    """Seconds for one register/release cycle per secret (with one redaction each)."""
    start = time.perf_counter()
    for secret in secrets:
        scope = SecretScope(secret)
        if redact is not None:
            redact_secrets(redact)
        scope.release()
    return time.perf_counter() - start


def _per_call_us(fn: Callable[[], object], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - start) / loops * 1e6


def run(config: Config) -> SuiteResult:
    started = time.perf_counter()
    repeats = config.reps(full=9, quick=2)
    loops = 500 if config.quick else 5000
    result = SuiteResult(
        suite="secrets",
        title="secrets: registry cost in a long-lived process",
        quick=config.quick,
        repeats=repeats,
        method=(
            f"{CYCLES} distinct {SECRET_CHARS}-character secrets per repeat, each registered "
            "in its own SecretScope and released; 'with a redact' adds one redact_secrets "
            "call per cycle beside 100 live secrets. Redaction: the mean of "
            f"{loops} calls per repeat on each text, with 1 and with 100 live secrets."
        ),
    )
    rng = random.Random(7)
    size_before = live_secret_count()
    cycles = [_cycles(_secrets(CYCLES, rng), None) for _ in range(repeats)]
    size_after = live_secret_count()
    stat = summary([s * 1000 for s in cycles])
    result.row(f"{CYCLES} register/release cycles", "ms", stat, registry_after=size_after)
    per_call: dict[tuple[int, str], list[float]] = {}
    for live in (1, 100):
        with SecretScope(*_secrets(live, rng)):
            if live == 100:
                with_redact = [
                    _cycles(_secrets(CYCLES, rng), TEXTS["plain error"]) for _ in range(repeats)
                ]
                result.row(
                    f"{CYCLES} cycles with a redact each, beside 100 live", "ms",
                    summary([s * 1000 for s in with_redact]), registry_after=live_secret_count(),
                )  # fmt: skip
            for name, text in TEXTS.items():
                runs = [_per_call_us(partial(redact_secrets, text), loops) for _ in range(repeats)]
                per_call[live, name] = runs
                result.row(f"redact_secrets, {live} live: {name}", "us/call", summary(runs))
    if live_secret_count() != size_before:
        raise AssertionError(f"the registry holds {live_secret_count()}, not {size_before}")
    total_s = stat["median"] / 1000
    result.target(
        f"{CYCLES} register/release cycles < 1 s", total_s, "< 1", total_s < 1,
        f"{SECRET_CHARS}-character secrets; the old registry took 28 s for 400 registrations",
    )  # fmt: skip
    result.target(
        "registry back at its starting size", size_after - size_before, "0",
        size_after == size_before, f"{size_before} before, {size_after} after",
    )  # fmt: skip
    one = summary(per_call[1, "plain error"])["median"]
    hundred = summary(per_call[100, "plain error"])["median"]
    result.target(
        "redact a plain error with 100 live secrets within 1.5x of 1", hundred / one, "<= 1.5",
        hundred / one <= 1.5, "secrets longer than the text are skipped by length",
    )  # fmt: skip
    result.elapsed_s = time.perf_counter() - started
    return result
