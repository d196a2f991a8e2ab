#!/usr/bin/env python3
"""``make test-matrix``: the pytest suite on every CPython we claim, and on our floors.

Entries (run one after the other, each in its own venv under ``.venv-matrix/<name>/``):

* ``3.10`` ... ``3.13``: that CPython with the newest releases of everything;
* ``floor``: the lowest Python (3.10) with the direct runtime dependencies pinned to
  their ``>=`` floors from ``constraints/floor.txt`` (dev tools stay at their newest).

An interpreter is ``python3.X`` on PATH if it runs (a pyenv shim of a version that is not
selected does not), else the newest ``$PYENV_ROOT/versions/3.X.N`` (``~/.pyenv``). A
missing one is reported ``absent`` and is no failure; any ``failed`` entry (install
failure, failing tests, or pytest's exit code 5: no tests collected) makes the exit
status 1. A venv is kept between runs and rebuilt from scratch only when pyproject.toml,
the constraints file or the interpreter changed (the stamp is ``<venv>/.installed``).

Lint and type checks are not repeated here: ``make test`` runs them once, and also runs
the whole suite under ``CI=true``, including the test files left out here (``SKIP_FILES``,
unless ``--full``) and the tests that need the ``livekit`` extra or a browser: the
entries install ``.[dev]`` only and run without ``CI``, so those skip here (counted).

Usage: ``tools/matrix.py [--full] [ENTRY ...] [-- PYTEST_ARGS ...]``.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parents[1]
MATRIX_DIR = ROOT / ".venv-matrix"
SUMMARY = MATRIX_DIR / "summary.txt"
FLOOR_CONSTRAINTS = "constraints/floor.txt"

# name -> (minor version, constraints file or None)
ENTRIES: dict[str, tuple[str, str | None]] = {
    "3.10": ("3.10", None),
    "3.11": ("3.11", None),
    "3.12": ("3.12", None),
    "3.13": ("3.13", None),
    "floor": ("3.10", FLOOR_CONSTRAINTS),
}

# Test files the matrix entries leave out (`make test` runs them all on the default
# interpreter; `--full` runs them here too):
# * the slow soak and benchmark smoke tests (about 35 s of each run): they measure load
#   and speed, which the other end-to-end tests already cover for interpreter and
#   dependency differences. The fuzz test stays: it feeds hostile frames to the decoders
#   and aiohttp, which do differ between versions.
# * the impaired-network tests (about 2 min): network namespaces, tc and nftables act in
#   the kernel, the same under every interpreter, and two entries at once would share
#   the two cores their fps and bitrate figures are measured on.
# * the NATS cluster tests (about 70 s): three nats-servers each, timed kills and
#   elections; two entries at once run six nodes plus their workers on the two cores,
#   and there elections and stream creation outlast the tests' timeouts (3 of 5 entries
#   failed so in one run). tests/test_nats.py (one nats-server) still covers nats-py on
#   every interpreter and on the floors.
SKIP_FILES: list[str] = [
    "tests/test_soak.py",
    "tests/test_benchmarks_smoke.py",
    "tests/test_impaired_network.py",
    "tests/test_cli_impair.py",
    "tests/test_nats_cluster.py",
    "tests/test_nats_outage.py",
    "tests/test_impaired_livekit.py",
]

ENTRY_TIMEOUT_S = 30 * 60  # a hung entry fails instead of hanging CI

PROBE = (
    "import sys, venv, ensurepip; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3])"
)


@dataclass
class Interpreter:
    path: str
    version: str  # e.g. "3.10.13"


@dataclass
class Result:
    name: str
    label: str
    status: str  # passed | failed | absent
    detail: str
    setup_s: float = 0.0
    test_s: float = 0.0

    @property
    def line(self) -> str:
        return f"matrix: {self.label} {self.status} ({self.detail})"


def log(message: str, out: TextIO | None = None) -> None:
    print(message, file=out or sys.stdout, flush=True)


def probe(candidate: str, minor: str) -> Interpreter | None:
    try:
        out = subprocess.run(
            [candidate, "-c", PROBE],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2 or not lines[1].startswith(minor + "."):
        return None
    return Interpreter(path=lines[0], version=lines[1])


def _patch(path: str) -> int:
    match = re.search(r"\.(\d+)$", os.path.basename(os.path.dirname(os.path.dirname(path))))
    return int(match.group(1)) if match else -1


def find_python(minor: str) -> Interpreter | None:
    candidates: list[str] = []
    on_path = shutil.which(f"python{minor}")
    if on_path:
        candidates.append(on_path)
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    pattern = os.path.join(pyenv_root, "versions", f"{minor}.*", "bin", f"python{minor}")
    # 3.X.N only: no 3.13.0t (free-threaded), 3.12-dev, or virtualenvs named like one.
    found = [
        p
        for p in glob.glob(pattern)
        if re.fullmatch(re.escape(minor) + r"\.\d+", Path(p).parents[1].name)
    ]
    candidates += sorted(found, key=_patch, reverse=True)
    for candidate in candidates:
        interpreter = probe(candidate, minor)
        if interpreter is not None:
            return interpreter
    return None


def stamp_for(interpreter: Interpreter, constraints: str | None) -> str:
    digest = hashlib.sha256()
    digest.update(f"{interpreter.path}\n{interpreter.version}\n".encode())
    digest.update((ROOT / "pyproject.toml").read_bytes())
    if constraints:
        digest.update(b"\0constraints\0" + (ROOT / constraints).read_bytes())
    return digest.hexdigest()


def venv_env(venv: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONHOME", None)
    env.pop("PYTHONPATH", None)
    # Under CI=true some tests fail instead of skipping when an optional piece is missing
    # (LiveKit's SDK, a browser): `make test` enforces that once. The matrix entries install
    # `.[dev]` only (LiveKit's SDK needs more than our floors), so those tests skip here,
    # and the skips are counted in the summary line.
    env.pop("CI", None)
    env["VIRTUAL_ENV"] = str(venv)
    # Tests that start `rxrealtime` or `python` by name must get this venv's.
    env["PATH"] = str(venv / "bin") + os.pathsep + env.get("PATH", "")
    return env


def ensure_venv(name: str, interpreter: Interpreter, constraints: str | None, out: TextIO) -> bool:
    """Create and install the entry's venv unless its stamp says it is current."""
    venv = MATRIX_DIR / name
    python = venv / "bin" / "python"
    stamp_file = venv / ".installed"
    stamp = stamp_for(interpreter, constraints)
    if python.exists() and stamp_file.exists() and stamp_file.read_text().strip() == stamp:
        log(f"[{name}] venv up to date ({venv.relative_to(ROOT)})", out)
        return True
    log(f"[{name}] creating {venv.relative_to(ROOT)} with Python {interpreter.version}", out)
    stamp_file.unlink(missing_ok=True)
    subprocess.run(
        [interpreter.path, "-m", "venv", "--clear", str(venv)],
        stdout=out,
        stderr=subprocess.STDOUT,
        check=True,
    )
    install = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    install += ["-e", ".[dev]"]
    if constraints:
        install += ["-c", constraints]
    log(f"[{name}] {' '.join(install[1:])}", out)
    done = subprocess.run(
        install, cwd=ROOT, env=venv_env(venv), stdout=out, stderr=subprocess.STDOUT, check=False
    )
    if done.returncode != 0:
        return False
    stamp_file.write_text(stamp + "\n")
    return True


def report_versions(name: str, venv: Path, constraints: str, out: TextIO) -> None:
    names = []
    for raw in (ROOT / constraints).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            names.append(re.split(r"[<>=!~ ;\[]", line, maxsplit=1)[0])
    code = (
        "import sys\nfrom importlib.metadata import version\n"
        "print(', '.join(f'{n} {version(n)}' for n in sys.argv[1:]))"
    )
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code, *names],
        capture_output=True,
        text=True,
        check=False,
    )
    log(f"[{name}] installed: {found.stdout.strip() or found.stderr.strip()}", out)


def junit_counts(path: Path) -> dict[str, int] | None:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for key in counts:
            counts[key] += int(suite.get(key, 0))
    return counts


def run_entry(name: str, full: bool, pytest_args: list[str], out: TextIO) -> Result:
    minor, constraints = ENTRIES[name]
    interpreter = find_python(minor)
    if interpreter is None:
        pyenv = os.environ.get("PYENV_ROOT") or "~/.pyenv"
        return Result(name, name, "absent", f"no python{minor} on PATH nor in {pyenv}/versions")
    label = interpreter.version if constraints is None else f"{name} (Python {interpreter.version})"
    log(f"\n===== matrix entry {name}: {interpreter.path} ({interpreter.version}) =====", out)
    venv = MATRIX_DIR / name
    start = time.monotonic()
    try:
        installed = ensure_venv(name, interpreter, constraints, out)
    except subprocess.CalledProcessError as exc:
        log(f"[{name}] venv creation failed: {exc}", out)
        installed = False
    setup_s = time.monotonic() - start
    if not installed:
        return Result(name, label, "failed", f"install failed, {setup_s:.0f} s", setup_s)
    if constraints:
        report_versions(name, venv, constraints, out)

    junit = venv / "junit.xml"
    junit.unlink(missing_ok=True)
    command = [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += [f"--junitxml={junit}"]
    if not full:
        skipped_files = sorted({p for g in SKIP_FILES for p in glob.glob(g, root_dir=ROOT)})
        command += [f"--ignore={path}" for path in skipped_files]
    command += pytest_args
    log(f"[{name}] {' '.join(command[1:])}", out)
    start = time.monotonic()
    try:
        code = subprocess.run(
            command,
            cwd=ROOT,
            env=venv_env(venv),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=ENTRY_TIMEOUT_S,
            check=False,
        ).returncode
    except subprocess.TimeoutExpired:
        code = None
    test_s = time.monotonic() - start
    timing = f"{test_s:.0f} s" + (f", setup {setup_s:.0f} s" if setup_s >= 1 else "")

    counts = junit_counts(junit) or {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    ran = counts["tests"] - counts["skipped"]
    skipped = f", {counts['skipped']} skipped" if counts["skipped"] else ""
    if code is None:
        return Result(name, label, "failed", f"timed out after {timing}", setup_s, test_s)
    if code == 0 and ran > 0:
        return Result(name, label, "passed", f"{ran} tests{skipped}, {timing}", setup_s, test_s)
    if code == 5 or ran == 0:
        why = "pytest exit 5: no tests collected" if code == 5 else "no test ran"
        return Result(name, label, "failed", f"{why}, {timing}", setup_s, test_s)
    bad = []
    if counts["failures"]:
        bad.append(f"{counts['failures']} failed")
    if counts["errors"]:
        bad.append(f"{counts['errors']} error" + ("s" if counts["errors"] > 1 else ""))
    what = " and ".join(bad) or f"pytest exit {code}"
    return Result(
        name, label, "failed", f"{what} of {ran} tests{skipped}, {timing}", setup_s, test_s
    )


def main(argv: list[str]) -> int:
    pytest_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, pytest_args = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("entries", nargs="*", help=f"default: all of {', '.join(ENTRIES)}")
    parser.add_argument("--full", action="store_true", help="leave out no test file")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="entries run at once (default 1; each entry's output is then printed whole"
        " when it ends, and kept in .venv-matrix/<entry>.log)",
    )
    args = parser.parse_args(argv)
    names = args.entries or list(ENTRIES)
    unknown = [n for n in names if n not in ENTRIES]
    if unknown:
        parser.error(f"unknown entries {unknown}; choose from {list(ENTRIES)}")

    MATRIX_DIR.mkdir(exist_ok=True)
    start = time.monotonic()
    if args.jobs <= 1:
        results = [run_entry(name, args.full, pytest_args, sys.stdout) for name in names]
    else:
        lock = threading.Lock()

        def run_logged(name: str) -> Result:
            path = MATRIX_DIR / f"{name}.log"
            with path.open("w") as out:
                result = run_entry(name, args.full, pytest_args, out)
            with lock:  # one entry's output at a time, whole
                log(path.read_text().rstrip("\n"))
                log(f"[{name}] {result.status} after {result.setup_s + result.test_s:.0f} s")
            return result

        log(f"running {len(names)} matrix entries, {args.jobs} at a time; output as each ends")
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(run_logged, names))
    total = time.monotonic() - start

    failed = [r for r in results if r.status == "failed"]
    passed = [r for r in results if r.status == "passed"]
    absent = [r for r in results if r.status == "absent"]
    lines = [r.line for r in results]
    lines.append(
        f"matrix total: {len(passed)} of {len(results)} entries passed, {len(failed)} failed,"
        f" {len(absent)} absent, {total:.0f} s"
    )
    SUMMARY.write_text("\n".join(lines) + "\n")
    log("\n" + "\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
