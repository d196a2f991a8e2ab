"""What the documentation calls the public API: one definition, shared by the docstring
gate (``check_docstrings.py``), the reference pages the mkdocs hook generates, the
cross-reference rewriter (``griffe_rst.py``) and ``tests/test_docs_site.py``.

A public name is a name in the ``__all__`` of a documented module: ``rxrealtime``
itself, every submodule its ``__all__`` exports (``protocol``, ``media``, ...), and the
subpackages users import by name (:data:`SUBPACKAGES`). Each gets a generated page
``reference/<module>.md``; the top-level names are grouped by :data:`GROUPS`.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Documented although ``rxrealtime.__all__`` does not export them: users import them.
SUBPACKAGES = ("rxrealtime.operators", "rxrealtime.billing", "rxrealtime.dashboards",
               "rxrealtime.nats", "rxrealtime.tapes", "rxrealtime.compat.decart",
               "rxrealtime.compat.decart.realtime")  # fmt: skip

#: Sections of the ``rxrealtime`` reference page. A top-level name in no group is
#: rendered under "More" (and the docs test asks for a group).
GROUPS: dict[str, tuple[str, ...]] = {
    "Sessions": ("Session", "Subscriber", "ConnectionState", "SessionInfo", "AckLatency"),
    "Streams and async bridges": ("HotStream", "StateStream", "LatestStream", "values",
                                  "next_value"),
    "Options and models": ("SessionOptions", "ReconnectPolicy", "IceServer",
                           "ModelDefinition", "MODELS"),
    "Errors": ("RealtimeError", "ProtocolError", "ServerError", "AuthError", "ConnectionLost",
               "ConnectTimeout", "AckTimeout", "RequestRejected", "SubscriberError",
               "SessionClosed", "NotConnected", "ConfigError", "InvalidToken"),
    "Checking a connection": ("check_connectivity",),
    "Fleets": ("Fleet", "FleetTotals", "Keyed"),
    "The embedded server": ("serve_embedded", "EmbeddedServer", "ServerSettings", "Faults"),
}  # fmt: skip


def top_level_all() -> list[str]:
    """``rxrealtime.__all__``, read from the source (no import)."""
    import ast

    tree = ast.parse((ROOT / "rxrealtime" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return [str(ast.literal_eval(e)) for e in node.value.elts]  # type: ignore[attr-defined]
    raise RuntimeError("rxrealtime/__init__.py has no __all__")


def is_submodule(name: str) -> bool:
    """Whether ``rxrealtime.<name>`` is a module or package (found, not imported)."""
    base = ROOT / "rxrealtime" / name
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def documented_modules() -> list[str]:
    """Every documented module, ``rxrealtime`` first."""
    exported = [f"rxrealtime.{n}" for n in top_level_all() if is_submodule(n)]
    return ["rxrealtime", *exported, *(m for m in SUBPACKAGES if m not in exported)]


def page_of(module: str) -> str:
    """The reference page of a documented module, relative to docs/."""
    return "reference/index.md" if module == "rxrealtime" else f"reference/{module[11:]}.md"


def read_version() -> str:
    """``__version__`` of ``rxrealtime/_version.py``, read as hatchling reads it (no import)."""
    text = (ROOT / "rxrealtime" / "_version.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', text, re.MULTILINE)
    if match is None:
        raise RuntimeError("rxrealtime/_version.py has no __version__ = '...' line")
    return match.group(1)


__all__ = ["GROUPS", "ROOT", "SUBPACKAGES", "documented_modules", "is_submodule", "page_of",
           "read_version", "top_level_all"]  # fmt: skip
