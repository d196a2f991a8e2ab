"""The secret registry: scoped, reference-counted, cheap, and kind to short keys.

Timing is the benchmark's job (``python -m benchmarks secrets``); here only a very loose
bound guards against the old quadratic registry coming back.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

import rxrealtime as rt
from rxrealtime.cli.bench import Config, run_suites
from rxrealtime.exceptions import (
    FRAME_EXCERPT_LIMIT,
    SHORT_SECRET_CHARS,
    RedactingFilter,
    SecretScope,
    excerpt,
    live_secret_count,
    redact_secrets,
    register_secret,
)
from rxrealtime.urls import redact


def unique(prefix: str = "sk-scoped-", chars: int = 240) -> str:
    """A secret no other test registers (the registry is the process's)."""
    return (prefix + uuid.uuid4().hex * 8)[:chars]


def test_a_scope_redacts_its_secrets_until_released() -> None:
    before = live_secret_count()
    key, turn = unique(), "Turn/Scoped+" + uuid.uuid4().hex
    with SecretScope(key, turn, None, "") as scope:
        assert len(scope) == 2 and live_secret_count() == before + 2
        text = f"echo {key.upper()} and {turn.lower()} and {quote(turn, safe='')}"
        assert redact_secrets(text) == "echo *** and *** and ***"
        assert str(rt.ConnectionLost(f"peer said {key}")) == "peer said ***"
        assert key not in repr(scope) and turn not in repr(scope)
    assert live_secret_count() == before
    assert redact_secrets(f"echo {key}") == f"echo {key}"
    scope.release()  # again: nothing more to release
    assert live_secret_count() == before


def test_registrations_are_counted_across_scopes_and_the_process() -> None:
    key, forever = unique(), unique("sk-forever-")
    first, second = SecretScope(key), SecretScope(key)
    shared = first.share()
    first.release()
    second.release()
    assert redact_secrets(key) == "***"  # the share still holds it
    shared.release()
    assert redact_secrets(key) == key
    before = live_secret_count()
    for _ in range(3):
        register_secret(forever)  # process-lifetime, registered once however often
    assert live_secret_count() == before + 1
    with SecretScope(forever):
        pass
    assert redact_secrets(forever) == "***"  # a scope's release leaves the process's


def test_register_release_cycles_leave_the_registry_at_its_starting_size() -> None:
    before = live_secret_count()
    secrets = [f"{i:06d}" + "s" * 234 for i in range(10_000)]  # 240 characters each
    start = time.perf_counter()
    for secret in secrets:
        SecretScope(secret).release()
    elapsed = time.perf_counter() - start
    assert live_secret_count() == before
    assert elapsed < 10, f"{elapsed:.1f} s: registration is no longer cheap"  # bench: < 1 s
    with SecretScope(*secrets[:100]):
        assert redact_secrets(f"a {secrets[42]} b") == "a *** b"
        assert live_secret_count() == before + 100
    assert live_secret_count() == before


def test_a_short_secret_is_redacted_only_as_a_whole_value() -> None:
    with SecretScope("x"):
        assert redact_secrets("user_agent=rxrealtime/0.1 xx ax x1") == (
            "user_agent=rxrealtime/0.1 xx ax x1"
        )
        assert redact_secrets("key x, 'X' \"x\" (x) x") == "key ***, '***' \"***\" (***) ***"
        assert redact_secrets("ws://h/s?api_key=x&user_agent=rxrealtime") == (
            "ws://h/s?api_key=***&user_agent=rxrealtime"
        )
    assert redact("user_agent=rxrealtime&api_key=x", "x") == "user_agent=rxrealtime&api_key=***"
    assert redact("rxrealtime said x", "x") == "rxrealtime said ***"
    below, at = "abc1234", "abc12345"  # 7 and 8 characters
    assert len(below) == SHORT_SECRET_CHARS - 1 and len(at) == SHORT_SECRET_CHARS
    with SecretScope(below, at):
        assert redact_secrets("zabc1234z abc1234") == "zabc1234z ***"
        assert redact_secrets("zABC12345z") == "z***z"


def test_a_secret_inside_another_is_never_left_half_shown() -> None:
    outer = unique()
    inner = outer[10:60]
    with SecretScope(inner, outer):
        assert redact_secrets(f"[{outer}] [{inner}]") == "[***] [***]"


def test_an_excerpt_redacts_before_it_cuts() -> None:
    first, second = unique("sk-first-"), unique("sk-second-")
    limit = FRAME_EXCERPT_LIMIT
    with SecretScope(first, second):
        straddling = "x" * (limit - 50) + first + "y" * 100
        assert excerpt(straddling) == "x" * (limit - 50) + "***" + "y" * 47 + "…"
        # the first secret's redaction pulls the second one's head under the limit
        both = "x" * 10 + first + "y" * 20 + second + "z" * 50
        for frame in (both, both.encode()):
            shown = excerpt(frame)
            assert shown is not None and first[:12] not in shown and second[:12] not in shown
            assert shown == "x" * 10 + "***" + "y" * 20 + "***" + "z" * 50


def test_the_logging_filter_redacts_scoped_secrets(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("rxrealtime.test.secret_registry")
    logger.addFilter(RedactingFilter())
    token = unique("eyJroom-")
    with caplog.at_level(logging.INFO, logger=logger.name), SecretScope(token):
        logger.info("refused token %s", token)
    assert token not in caplog.text and "refused token ***" in caplog.text


def test_the_secrets_bench_suite_reports_cycles_and_redaction(tmp_path: Path) -> None:
    (doc,) = run_suites(["secrets"], Config(quick=True, repeats=1), tmp_path, log=print)
    rows = {row["name"]: row for row in doc["rows"]}
    assert rows["10000 register/release cycles"]["registry_after"] == live_secret_count()
    assert {"redact_secrets, 1 live: plain error", "redact_secrets, 100 live: plain error"} <= set(
        rows
    )
    targets = {t["target"]: t for t in doc["targets"]}
    assert targets["registry back at its starting size"]["met"]
    assert (tmp_path / "secrets.json").is_file()


def test_a_scope_released_by_the_garbage_collector_mid_registration_does_not_deadlock() -> None:
    """A session's scope is released by a ``weakref.finalize`` of its owner; the collector
    may run that inside another registration, on the same thread, while the registry's
    lock is held. It once hung a matrix entry for good; now the release waits its turn
    and the registry ends where it started."""
    import gc
    import threading
    import weakref

    before = live_secret_count()

    def churn() -> None:
        gc.set_threshold(1, 1, 1)  # collect at nearly every allocation
        try:
            for i in range(2000):
                owner = _Owner()
                owner.me = owner  # a cycle: only the collector frees it
                scope = SecretScope(f"key-{i}-{uuid.uuid4().hex}")
                weakref.finalize(owner, scope.release)
                del owner, scope
                SecretScope(f"other-{i}-{uuid.uuid4().hex}").release()
        finally:
            gc.set_threshold(700, 10, 10)
            gc.collect()

    worker = threading.Thread(target=churn, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "the registry deadlocked on a release by the collector"
    assert live_secret_count() == before


class _Owner:
    me: object = None
