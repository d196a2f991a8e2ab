"""The package a user installs: built, checked, installed in a fresh venv, and run.

``python -m build`` makes the sdist and the wheel (the wheel from the sdist, so the sdist
is complete), ``twine check`` passes, the wheel installs **with its dependencies** (not
editable, pip's cache makes it quick) into a new venv, and from there
``rxrealtime --version``, ``rxrealtime demo --seconds 3 --json`` and ``import
rxrealtime`` work. The wheel holds the package and nothing else, and its metadata
carries the one version and the extras users install by name.

Slow (a build and an install): ``make wheel-test`` runs it (``.ci/run`` does, after
``make test``); elsewhere it skips unless ``RXREALTIME_PACKAGE_TESTS=1``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "docs"))

from public_api import read_version  # noqa: E402

pytestmark = [
    pytest.mark.wheel,
    pytest.mark.skipif(
        os.environ.get("RXREALTIME_PACKAGE_TESTS") != "1",
        reason="builds and installs the wheel: `make wheel-test` runs it",
    ),
    pytest.mark.timeout(900),
]

#: Files a wheel may hold besides ``rxrealtime/**/*.py`` (static assets go here too).
PACKAGE_DATA = {"rxrealtime/py.typed"} | {
    p.relative_to(ROOT).as_posix()
    for p in (ROOT / "rxrealtime" / "dashboards" / "static").glob("*")
}  # the web dashboard's page and its vendored uPlot (no CDN)
DIST_INFO = {"METADATA", "WHEEL", "RECORD", "entry_points.txt"}
FORBIDDEN_PARTS = {"tests", "benchmarks", "tools", "docs", "examples", ".venv", "site",
                   "__pycache__", "results", ".hypothesis"}  # fmt: skip


def run(*cmd: str | Path, cwd: Path | None = None, timeout: float = 600) -> str:
    """Run a command, fail the test with its output when it fails; returns stdout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited {done.returncode}\n"
        f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, ROOT, cwd=ROOT)
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    (path,) = dist.glob("rxrealtime-*-py3-none-any.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel and its dependencies installed (pip's cache reused)."""
    root = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", root / "v")
    python = root / "v" / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", wheel, timeout=900)
    return root / "v"


def test_sdist_and_wheel_pass_twine_check(dist: Path) -> None:
    files = sorted(dist.iterdir())
    assert sorted(f.suffix for f in files) == [".gz", ".whl"], files
    out = run(sys.executable, "-m", "twine", "check", "--strict", *files)
    assert out.count("PASSED") == 2, out


def test_sdist_holds_the_sources_and_no_local_state(dist: Path) -> None:
    (sdist,) = dist.glob("rxrealtime-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("pyproject.toml", "README.md", "CHANGELOG.md", "rxrealtime/__init__.py",
                   "rxrealtime/py.typed", "tests/marbles.py", "docs/protocol.md",
                   "mkdocs.yml", "tools/docs/hooks.py"):  # fmt: skip
        assert needed in names, f"sdist lacks {needed}"
    for name in names:
        parts = set(Path(name).parts)
        assert not parts & {".venv", "site", "__pycache__", ".hypothesis", ".vendor-venv"}, name
        assert not name.startswith(("tools/livekit/bin", ".venv-matrix")), name


def test_wheel_holds_the_package_and_nothing_else(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    version = read_version()
    dist_info = f"rxrealtime-{version}.dist-info/"
    package = {n for n in names if not n.startswith(dist_info)}
    info = {n[len(dist_info) :] for n in names if n.startswith(dist_info)}
    expected = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "rxrealtime").rglob("*.py")
        if "__pycache__" not in p.parts
    } | PACKAGE_DATA
    assert package == expected, (
        f"in the wheel, not expected: {sorted(package - expected)}; "
        f"expected, not in the wheel: {sorted(expected - package)}"
    )
    assert DIST_INFO <= info, info
    assert info - DIST_INFO <= {"licenses/LICENSE"}, info
    for name in package:
        assert not set(Path(name).parts[1:]) & FORBIDDEN_PARTS, name


def test_wheel_metadata_has_the_version_and_the_extras(wheel: Path) -> None:
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as zf:
        text = zf.read(f"rxrealtime-{read_version()}.dist-info/METADATA").decode()
        entry_points = zf.read(f"rxrealtime-{read_version()}.dist-info/entry_points.txt")
    meta = Parser().parsestr(text)
    assert meta["Name"] == "rxrealtime"
    assert meta["Version"] == read_version()
    assert meta["Requires-Python"] == ">=3.10"
    extras = set(meta.get_all("Provides-Extra") or [])
    assert {"nats", "livekit", "plot", "docs"} <= extras, extras
    requirements = [Requirement(r) for r in meta.get_all("Requires-Dist") or []]

    def resolved(extra: str) -> set[str]:
        """What ``pip install 'rxrealtime[extra]'`` adds to the plain install."""
        return {
            r.name
            for r in requirements
            if r.marker is not None and r.marker.evaluate({"extra": extra})
        }

    assert "nats-py" in resolved("nats")
    assert {"livekit", "livekit-api"} <= resolved("livekit")
    assert "matplotlib" in resolved("plot")
    runtime = {r.name for r in requirements if r.marker is None}
    assert {"reactivex", "msgspec", "aiortc", "aiohttp", "pydantic"} <= runtime
    assert b"rxrealtime = rxrealtime.cli:main" in entry_points


def test_installed_wheel_reports_the_one_version(venv: Path, tmp_path: Path) -> None:
    out = run(venv / "bin" / "rxrealtime", "--version", cwd=tmp_path)
    assert out.strip() == f"rxrealtime {read_version()}"
    import rxrealtime

    assert rxrealtime.__version__ == read_version()  # the source tree agrees


def test_installed_wheel_imports_from_site_packages(venv: Path, tmp_path: Path) -> None:
    code = "import rxrealtime, sys; print(rxrealtime.__file__); print(rxrealtime.__version__)"
    where, version = run(venv / "bin" / "python", "-c", code, cwd=tmp_path).split()
    assert Path(where).is_relative_to(venv), where  # not the source tree
    assert version == read_version()
    metadata = "from importlib.metadata import version; print(version('rxrealtime'))"
    assert run(venv / "bin" / "python", "-c", metadata, cwd=tmp_path).strip() == version


def test_installed_wheel_runs_the_demo(venv: Path, tmp_path: Path) -> None:
    out = run(venv / "bin" / "rxrealtime", "demo", "--seconds", "3", "--json", cwd=tmp_path,
              timeout=120)  # fmt: skip
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["errors"] == [], summary
    assert "generating" in summary["state_changes"], summary
    assert summary["ticks"] >= 1 and summary["billed_seconds"] >= 1, summary
    assert summary["frames_received"] >= 1, summary
