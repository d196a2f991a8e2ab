"""What the LiveKit suites share: the skip rules (a failure under ``CI=true``), the
livekit-server binary, and the cached venv holding the vendor's own client.

Not a conftest proper (no fixtures are registered here): ``test_server_livekit.py`` and
``test_vendor_client.py`` import these helpers and build their fixtures from them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from rxrealtime.server.livekit_server import BUILD_HINT, find_livekit_binary

ROOT = Path(__file__).resolve().parent.parent
VENDOR_REQUIREMENT = "decart[realtime]==0.2.4"
VENDOR_VENV = ROOT / "tools" / "livekit" / ".vendor-venv"
VENDOR_MARKER = ".rxrealtime-complete"
"""Written last, holding the requirement: a venv without it is half-made and rebuilt."""
VENDOR_INSTALL_TIMEOUT_S = 1500.0


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip, but fail under ``CI=true``: CI must not pass by skipping what it should run."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a skip here is a failure)", pytrace=False)
    pytest.skip(reason)


def require_livekit() -> Path:
    """The livekit-server binary, with LiveKit's SDK importable; else skip (or fail in CI)."""
    for module in ("livekit.rtc", "livekit.api"):
        try:
            __import__(module)
        except ImportError:
            skip_or_fail(f"{module} is not installed: pip install livekit livekit-api")
    binary = find_livekit_binary()
    if binary is None:
        skip_or_fail(f"no livekit-server binary: {BUILD_HINT}")
    return binary


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One creator at a time (several test runs may share this checkout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def vendor_python(venv: Path = VENDOR_VENV) -> Path:
    """The vendor venv's interpreter, creating the venv once (minutes, ~350 MB) and
    reusing it after; skip (fail under CI) if it cannot be made, e.g. PyPI unreachable."""
    python = venv / "bin" / "python"
    marker = venv / VENDOR_MARKER
    with _locked(venv.with_name(venv.name + ".lock")):
        if marker.is_file() and marker.read_text().strip() == VENDOR_REQUIREMENT:
            return python
        shutil.rmtree(venv, ignore_errors=True)  # half-made: start over
        started = time.monotonic()
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                VENDOR_REQUIREMENT,
            ],
            [str(python), "-c", "from decart.realtime import RealtimeClient; import livekit.rtc"],
        ]
        for step in steps:
            try:
                done = subprocess.run(
                    step, capture_output=True, text=True, timeout=VENDOR_INSTALL_TIMEOUT_S
                )
            except subprocess.TimeoutExpired:
                skip_or_fail(f"creating the vendor venv timed out: {' '.join(step[:4])}")
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
                skip_or_fail(f"cannot create the vendor venv ({VENDOR_REQUIREMENT}): {tail[0]}")
        marker.write_text(VENDOR_REQUIREMENT + "\n")
        (venv / ".rxrealtime-created-in-s").write_text(f"{time.monotonic() - started:.1f}\n")
    return python


if __name__ == "__main__":  # python tests/conftest_livekit.py: make the vendor venv now
    t0 = time.monotonic()
    print(vendor_python(), f"{time.monotonic() - t0:.1f} s")
