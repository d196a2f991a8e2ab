"""The architecture's rules, checked over every module of the package.

Every module belongs to exactly one layer (:data:`LAYERS`, by folder or name); a layer
imports only the layers its row names, pure layers import no I/O library, and the
never-rules (:data:`NEVER`) hold; no module imports a name of the package ``__init__``,
no two modules import each other round a circle, and nobody reaches into another
module's private names. ``docs/architecture.md`` shows both tables as rendered here and
the real transition table of the core, so the pictures cannot drift from the code.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

from rxrealtime.core import transition_table

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rxrealtime"


class Layer(NamedTuple):
    modules: tuple[str, ...]  # module names or folders (a folder: every module below it)
    may_import: tuple[str, ...]  # other layers (its own is always allowed)
    job: str


NO_IO = ("asyncio", "aiohttp", "aiortc", "aioice", "av", "numpy", "socket", "livekit")

#: Bottom to top. Arrows only point down this list.
LAYERS: dict[str, Layer] = {
    "version": Layer(("_version",), (), "the version, a leaf"),
    "wire": Layer(("exceptions", "protocol", "urls", "states"), (),
                  "frames as msgspec structs, the error tree, URLs and redaction, the "
                  "connection state and session identity"),
    "values": Layer(("diagnostics", "quality", "latency", "models", "inputs"), ("wire",),
                    "what sessions report and take: diagnostics, quality verdicts, latency, "
                    "the model catalogue, prompt and image checks"),
    "media": Layer(("media", "stamps"), ("wire", "values"),
                   "video frames, the synthetic source and its picture stamps (aiortc, numpy; "
                   "loaded on first use)"),
    "core": Layer(("core",), ("wire", "values"),
                  "the sans-I/O state machine: events in, decisions out"),
    "streams": Layer(("streams", "session_streams"), ("wire", "values"),
                     "hot streams with replay, the async bridges, one session's streams"),
    "transports": Layer(("transports",), ("wire", "values", "media"),
                        "the media seam and its registry; aiortc, LiveKit, ICE"),
    "config": Layer(("options", "roles"), ("version", "wire", "values", "transports"),
                    "session options (pydantic), the streaming and view-only roles"),
    "shell": Layer(("asyncio",),
                   ("wire", "values", "media", "core", "streams", "transports", "config"),
                   "the asyncio shell: socket and read loop, links, timers, futures; reads "
                   "picture stamps off generated frames"),
    "session": Layer(("session", "connectivity", "transport"),
                     ("wire", "values", "core", "streams", "transports", "config", "shell"),
                     "the conductor and public API; the connectivity check; 0.1 names"),
    "billing": Layer(("billing",), ("wire",), "the billing clock and prices"),
    "operators": Layer(("operators",), ("wire", "values", "billing"),
                       "one reactivex-shaped operator per module"),
    "tapes": Layer(("tapes",), ("version", "wire", "values", "streams", "billing"),
                   "record a session as JSON Lines, replay it as the same streams"),
    "fleet": Layer(("fleet",), ("wire", "values", "streams", "billing", "session"),
                   "many sessions as keyed streams with totals"),
    "server": Layer(("server",), ("wire", "values", "media", "config", "transports", "tapes"),
                    "the embedded reference server"),
    "dashboards": Layer(("dashboards",),
                        ("version", "wire", "values", "media", "streams", "billing",
                         "operators", "fleet", "session"),
                        "Prometheus, OpenTelemetry, the terminal and web views, plots"),
    "nats": Layer(("nats",),
                  ("wire", "values", "streams", "config", "billing", "fleet", "session",
                   "server"),
                  "fleets over NATS JetStream (optional extra)"),
    "compat": Layer(("compat",), ("wire", "values", "streams", "config", "session"),
                    "the vendor SDK's realtime API on a Session (optional extra: LiveKit)"),
    "testing": Layer(("testing",), ("wire", "values", "media", "transports", "config", "server"),
                     "an impaired network below the application: namespaces, veth, tc, "
                     "nftables; the embedded server on one end"),
    "cli": Layer(("cli", "_bench"),
                 ("version", "wire", "values", "media", "core", "streams", "transports",
                  "config",
                  "shell", "session", "billing", "operators", "tapes", "fleet", "server",
                  "dashboards", "nats", "testing"),
                 "the command line and the benchmark suites"),
}  # fmt: skip

#: Layers that import no I/O library at all (and the core no reactivex either).
PURE: dict[str, tuple[str, ...]] = {
    "version": NO_IO, "wire": (*NO_IO, "reactivex"), "values": (*NO_IO, "reactivex"),
    "core": (*NO_IO, "reactivex"), "billing": NO_IO,
}  # fmt: skip

#: (importer, imported, why): never, whatever the layer table allows.
NEVER: list[tuple[str, str, str]] = [
    ("core", "asyncio", "the core decides; the shell does the I/O"),
    ("transports", "core", "a transport acts through its MediaContext only"),
    ("transports", "asyncio", "likewise: no transport knows the shell"),
    ("transports", "session", "likewise: no transport knows the session"),
    ("asyncio", "session", "the shell carries out the core's decisions, not the session's"),
    ("session", "core.machine", "the session reaches the core only through the shell"),
    ("session", "core.events", "likewise"),
    ("streams", "asyncio", "streams are values, not I/O"),
    ("streams", "transports", "likewise"),
    ("streams", "session", "likewise"),
    ("operators", "asyncio", "operators compose streams; they never open anything"),
    ("operators", "transports", "likewise"),
    ("operators", "session", "likewise"),
    ("billing", "asyncio", "billing is arithmetic on ticks"),
    ("billing", "transports", "likewise"),
    ("billing", "session", "likewise"),
    ("tapes", "asyncio", "a tape replays without a network"),
    ("tapes", "transports", "likewise"),
    ("tapes", "session", "likewise"),
    ("server", "session", "server and client never import each other"),
    ("server", "asyncio", "likewise"),
    ("server", "transports.aiortc", "likewise"),
    ("server", "transports.livekit", "likewise"),
    ("session", "server", "likewise"),
    ("asyncio", "server", "likewise"),
    ("transports", "server", "likewise"),
    ("fleet", "nats", "the in-process fleet works without the NATS extra"),
    ("dashboards", "nats", "likewise for dashboards"),
    ("dashboards", "operators._", "dashboards use operators' public names only"),
    ("fleet", "operators._", "likewise"),
]


# -- reading the package -------------------------------------------------------------


def module_name(path: Path) -> str:
    """Dotted name under ``rxrealtime`` ('' for the package itself)."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


MODULES = {module_name(p) for p in sources()}


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, imported names) of every import in ``path``, lazy ones too."""
    tree = ast.parse(path.read_text())
    package: list[str] = []
    if path.is_relative_to(PACKAGE):
        package = ("rxrealtime." + module_name(path)).rstrip(".").split(".")
        if path.name != "__init__.py":
            package = package[:-1]
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names]
            if node.level:
                base = package[: len(package) - node.level + 1]
                found.append((".".join([*base, *([node.module] if node.module else [])]), names))
            elif node.module:
                found.append((node.module, names))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
    return found


def internal_targets(path: Path) -> set[str]:
    """The modules of rxrealtime that ``path`` imports ('' is the package itself)."""
    targets = set()
    for target, names in imports_of(path):
        if target != "rxrealtime" and not target.startswith("rxrealtime."):
            continue
        inner = target.removeprefix("rxrealtime").removeprefix(".")
        submodules = {f"{inner}.{n}".lstrip(".") for n in names} & MODULES
        targets |= submodules or {inner}
    return targets


def within(module: str, prefix: str) -> bool:
    if prefix.endswith("._"):  # a private module of that package
        return module.startswith(prefix)
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> str:
    found = [
        name for name, layer in LAYERS.items() if any(within(module, m) for m in layer.modules)
    ]
    assert len(found) == 1, f"rxrealtime.{module} is in layers {found}: give it exactly one"
    return found[0]


def render_layers() -> list[str]:
    rows = ["| layer | modules | job | may import |", "|---|---|---|---|"]
    for name, layer in reversed(LAYERS.items()):
        mods = ", ".join(f"`{m}/`" if (PACKAGE / m).is_dir() else f"`{m}`" for m in layer.modules)
        rows.append(f"| {name} | {mods} | {layer.job} | {', '.join(layer.may_import) or '—'} |")
    return rows


def render_never() -> list[str]:
    rows = ["| module in | never imports | why |", "|---|---|---|"]
    rows += [f"| `{a}` | `{b}` | {why} |" for a, b, why in NEVER]
    return rows


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


# -- the rules -----------------------------------------------------------------------


def test_every_module_is_in_exactly_one_layer() -> None:
    for module in MODULES - {""}:
        layer_of(module)


def test_every_import_points_down_the_layer_table() -> None:
    offenders = []
    for path in sources():
        here = module_name(path)
        if here == "":
            continue  # the package's face: names it loads lazily for users
        mine = layer_of(here)
        allowed = {mine, *LAYERS[mine].may_import}
        for target in internal_targets(path) - {""}:
            if layer_of(target) not in allowed:
                offenders.append(f"{here} ({mine}) imports {target} ({layer_of(target)})")
    assert offenders == []


def test_pure_layers_import_no_io_library() -> None:
    offenders = []
    for path in sources():
        here = module_name(path)
        banned = PURE.get(layer_of(here)) if here else None
        for target, _ in imports_of(path) if banned else ():
            if target.split(".")[0] in banned:
                offenders.append(f"{here} imports {target}")
    assert offenders == []


def test_the_never_rules_hold() -> None:
    offenders = []
    for path in sources():
        here = module_name(path)
        for target in internal_targets(path):
            offenders += [f"{here} imports {target}: {why}" for a, b, why in NEVER
                          if within(here, a) and within(target, b)]  # fmt: skip
    assert offenders == []


def test_nothing_imports_a_name_of_the_package_init() -> None:
    """Only submodules are imported from ``rxrealtime`` itself: its names are the users'."""
    offenders = []
    for path in sources():
        for target, names in imports_of(path):
            if target == "rxrealtime":
                offenders += [f"{module_name(path)}: {n}" for n in names if n not in MODULES]
    assert offenders == []


def test_no_import_circle() -> None:
    graph = {module_name(p): internal_targets(p) - {""} for p in sources()}
    done: set[str] = set()
    stack: list[str] = []

    def visit(module: str) -> None:
        if module in stack:
            circle = [*stack[stack.index(module) :], module]
            raise AssertionError("import circle: " + " -> ".join(circle))
        if module in done:
            return
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            visit(target)
        stack.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_nothing_imports_a_private_name_of_another_module() -> None:
    offenders = []
    for path in [*sources(), *ROOT.joinpath("tests").rglob("*.py"), *ROOT.glob("examples/*.py"),
                 *ROOT.joinpath("benchmarks").rglob("*.py")]:  # fmt: skip
        inside = path.is_relative_to(PACKAGE)
        here = module_name(path) if inside else path.name
        for target, names in imports_of(path):
            if not target.startswith("rxrealtime"):
                continue
            parts = target.split(".")
            private = [i for i, part in enumerate(parts) if _is_private(part)]
            if private:
                # a private module is its package's business: only modules of the package
                # that holds it, or of its subpackages, may import it (operators/__init__
                # -> operators._cost; cli.main -> rxrealtime._version)
                owner = ".".join(parts[: private[0]])
                importer = ("rxrealtime." + here).rstrip(".") if inside else here
                if inside and path.name != "__init__.py":
                    importer = importer.rsplit(".", 1)[0]  # the importer's package
                if importer != owner and not importer.startswith(owner + "."):
                    offenders.append(f"{here} imports {target}")
            offenders += [f"{here} imports {target}.{n}" for n in names if _is_private(n)]
    assert sorted(set(offenders)) == []


def test_no_module_is_over_450_lines() -> None:
    long = {module_name(p): n for p in sources() if (n := len(p.read_text().splitlines())) > 450}
    assert long == {}


def _block(marker: str) -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split(f"<!-- {marker}:start -->")[1].split(f"<!-- {marker}:end -->")[0]
    return [line.strip() for line in block.strip().splitlines()]


def test_architecture_doc_shows_the_real_layer_rules() -> None:
    assert _block("layers") == render_layers()
    assert _block("never") == render_never()


def test_architecture_doc_shows_the_real_transition_table() -> None:
    rows = _block("transitions")[2:]
    expected = ["| " + " | ".join(row) + " |" for row in transition_table()]
    assert rows == expected
