"""The architecture's rules, checked: layers import only downward, nobody reaches into
another module's private names, and docs/architecture.md shows the real state table."""

from __future__ import annotations

import ast
from pathlib import Path

from rxrealtime.core import transition_table

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rxrealtime"

#: Pure layers: what each may import of rxrealtime, and no I/O library at all.
PURE = {
    "protocol": {"exceptions"},
    "exceptions": set(),
    "urls": {"exceptions"},
    "events": {"protocol", "exceptions"},
    "policy": {"exceptions"},
    "acks": set(),
    "core": {"protocol", "exceptions", "events", "policy", "acks", "diagnostics"},
    "diagnostics": set(),
    "quality": set(),
    "billing": {"exceptions"},
}
IO_LIBRARIES = {"asyncio", "aiohttp", "aiortc", "aioice", "av", "numpy", "socket"}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module within rxrealtime or top-level library, imported names)."""
    tree = ast.parse(path.read_text())
    package = module_name(path).split(".") if path.is_relative_to(PACKAGE) else []
    if path.name != "__init__.py":
        package = package[:-1]
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names]
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
                found.append(("rxrealtime." + target if target else "rxrealtime", names))
            elif node.module:
                found.append((node.module, names))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_pure_layers_import_only_what_their_layer_allows() -> None:
    for name, allowed in PURE.items():
        for target, _ in imports_of(PACKAGE / f"{name}.py"):
            top = target.split(".")[0]
            assert top not in IO_LIBRARIES, f"{name} imports {target}"
            if target.startswith("rxrealtime."):
                inner = target.removeprefix("rxrealtime.")
                assert inner in allowed, f"{name} may not import {inner}"


def test_nothing_imports_a_private_name_of_another_module() -> None:
    offenders = []
    for path in [*sources(), *ROOT.joinpath("tests").glob("*.py"), *ROOT.glob("examples/*.py")]:
        here = module_name(path) if path.is_relative_to(PACKAGE) else path.name
        for target, names in imports_of(path):
            if not target.startswith("rxrealtime"):
                continue
            parts = target.split(".")
            private = [i for i, part in enumerate(parts) if _is_private(part)]
            if private:
                # a private module is its package's business: only modules of the package
                # that holds it may import it (operators/__init__ -> operators._cost)
                owner = ".".join(parts[: private[0]])
                importer = "rxrealtime." + here if path.is_relative_to(PACKAGE) else here
                if path.name != "__init__.py":
                    importer = importer.rsplit(".", 1)[0]  # the importer's package
                if importer != owner and not importer.startswith(owner + "._"):
                    offenders.append(f"{here} imports {target}")
            offenders += [f"{here} imports {target}.{n}" for n in names if _is_private(n)]
    assert sorted(set(offenders)) == []


def test_dashboards_and_fleet_never_import_operator_internals() -> None:
    for path in [PACKAGE / "fleet.py", *PACKAGE.joinpath("dashboards").glob("*.py")]:
        for target, _ in imports_of(path):
            assert not target.startswith("rxrealtime.operators._"), f"{path.name}: {target}"


def test_the_core_never_imports_the_shell() -> None:
    shell = {"session", "shell", "signaling", "link", "media_transport", "transport_aiortc",
             "ice", "media", "server"}  # fmt: skip
    for name in ("core", "events", "policy", "acks"):
        for target, _ in imports_of(PACKAGE / f"{name}.py"):
            assert target.removeprefix("rxrealtime.") not in shell


def test_no_module_is_over_450_lines() -> None:
    long = {module_name(p): n for p in sources() if (n := len(p.read_text().splitlines())) > 450}
    assert long == {}


def test_architecture_doc_shows_the_real_transition_table() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("<!-- transitions:start -->")[1].split("<!-- transitions:end -->")[0]
    rows = [line.strip() for line in block.strip().splitlines()[2:]]
    expected = ["| " + " | ".join(row) + " |" for row in transition_table()]
    assert rows == expected
