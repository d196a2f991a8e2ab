"""The promises of pyproject.toml stay tested: floors pinned, every claimed Python run.

``constraints/floor.txt`` pins each direct runtime dependency to exactly the ``>=`` floor
that pyproject.toml declares, so the ``floor`` entry of ``make test-matrix`` tests what
we promise; and the matrix covers every CPython minor from ``requires-python`` up.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints" / "floor.txt"
NEWEST_TESTED_MINOR = 13  # 3.13: the newest CPython the matrix runs


def normalize(name: str) -> str:
    """PEP 503: ``Prometheus_Client`` and ``prometheus-client`` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def release(version: str) -> tuple[int, ...]:
    """``4.0`` and ``4.0.0`` are the same version (PEP 440 pads with zeros)."""
    match = re.fullmatch(r"v?(\d+(?:\.\d+)*)", version.strip())
    assert match, f"not a plain release version: {version!r}"
    parts = [int(p) for p in match.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def parse_requirement_simply(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The fallback without ``packaging``: enough for our plain specifiers."""
    body = text.split(";", 1)[0]
    match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*?)\s*", body)
    assert match, f"cannot parse requirement {text!r}"
    specs = []
    for part in filter(None, (p.strip() for p in match.group(2).split(","))):
        spec = re.fullmatch(r"(===|==|!=|~=|>=|<=|>|<)\s*(\S+)", part)
        assert spec, f"cannot parse specifier {part!r} of {text!r}"
        specs.append((spec.group(1), spec.group(2)))
    return normalize(match.group(1)), specs


def parse_requirement(text: str) -> tuple[str, list[tuple[str, str]]]:
    """``name[extra]>=1.2,<3 ; marker`` -> (normalized name, [(op, version), ...])."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        return parse_requirement_simply(text)
    requirement = Requirement(text)
    return normalize(requirement.name), [(s.operator, s.version) for s in requirement.specifier]


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def floors() -> dict[str, str]:
    """Each direct runtime dependency and its ``>=`` floor."""
    result = {}
    for text in pyproject()["project"]["dependencies"]:
        name, specs = parse_requirement(text)
        lower = [version for op, version in specs if op == ">="]
        assert len(lower) == 1, f"{text!r}: a runtime dependency needs exactly one >= floor"
        result[name] = lower[0]
    return result


def pins() -> dict[str, tuple[str, str]]:
    """Each requirement of the constraints file: name -> (operator, version)."""
    result: dict[str, tuple[str, str]] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, specs = parse_requirement(line)
        assert len(specs) == 1, f"{line!r}: pin exactly one version"
        assert name not in result, f"{name} is pinned twice"
        result[name] = specs[0]
    return result


def test_every_runtime_dependency_is_pinned_to_its_floor() -> None:
    declared, pinned = floors(), pins()
    assert declared, "pyproject.toml declares no runtime dependency?"
    missing = sorted(set(declared) - set(pinned))
    assert missing == [], f"not in {CONSTRAINTS.name}: {missing}"
    drifted = {
        name: (f">={floor}", "".join(pinned[name]))
        for name, floor in declared.items()
        if pinned[name][0] != "==" or release(pinned[name][1]) != release(floor)
    }
    assert drifted == {}, f"pyproject floor vs {CONSTRAINTS.name} pin: {drifted}"


def test_the_constraints_file_pins_exact_versions_only() -> None:
    loose = {name: "".join(spec) for name, spec in pins().items() if spec[0] != "=="}
    assert loose == {}


def test_the_parsing_helpers() -> None:
    assert release("4.0") == release("4.0.0") == (4,)
    assert release("0.19") != release("0.19.1")
    assert normalize("Prometheus_Client") == "prometheus-client"
    for parse in (parse_requirement, parse_requirement_simply):
        name, specs = parse("aiortc[codecs] >=1.9, <2 ; python_version >= '3.10'")
        assert (name, sorted(specs)) == ("aiortc", [("<", "2"), (">=", "1.9")])
        assert parse("prometheus_client==0.19") == ("prometheus-client", [("==", "0.19")])


def load_matrix() -> Any:
    spec = importlib.util.spec_from_file_location("matrix", ROOT / "tools" / "matrix.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("matrix", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_matrix_runs_every_python_we_claim_and_the_floors_on_the_lowest() -> None:
    claimed = pyproject()["project"]["requires-python"]
    match = re.fullmatch(r">=\s*3\.(\d+)", claimed.strip())
    assert match, f"update this test for requires-python = {claimed!r}"
    lowest = int(match.group(1))
    entries = load_matrix().ENTRIES
    expected = {f"3.{minor}" for minor in range(lowest, NEWEST_TESTED_MINOR + 1)}
    assert expected <= set(entries)
    assert entries["floor"] == (f"3.{lowest}", "constraints/floor.txt")
