"""The API reference gate: every public name has a docstring.

Public names are those in the ``__all__`` of the modules in
``public_api.documented_modules()``. The check reads the source with griffe, the
library mkdocstrings renders the reference with, so what it checks is what the pages
show. Required:

* a docstring on every public class, function, constant, type alias and submodule;
* in a public class, on every public method and property, and on every stream (an
  attribute annotated ``HotStream[...]``, ``StateStream[...]`` or ``LatestStream[...]``),
  including those inherited from a base class of rxrealtime's own (``Session`` gets its
  streams from ``SessionStreams``). Dunder methods, data fields and members inherited
  from other libraries (reactivex, pydantic, msgspec, aiortc) are not required.

``tools/docs/docstrings_pending.txt`` lists the names still missing one in files whose
owners have been asked to write them: they are printed but do not fail. A listed name
that has a docstring now (or no longer exists) fails, so the list only shrinks.

Run ``python tools/docs/check_docstrings.py`` (exit 1 on an error); ``make docs`` runs
it from the mkdocs hook before building.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from public_api import ROOT, documented_modules

PENDING_FILE = Path(__file__).resolve().parent / "docstrings_pending.txt"
STREAM_TYPES = ("HotStream[", "StateStream[", "LatestStream[")


@dataclass(frozen=True, order=True)
class Missing:
    """One public object without a docstring."""

    path: str  # canonical path: where the docstring is to be written
    kind: str
    where: str  # file:line

    def __str__(self) -> str:
        return f"{self.path} ({self.kind}, {self.where})"


def _where(obj: object) -> str:
    filepath = getattr(obj, "filepath", None)
    lineno = getattr(obj, "lineno", None)
    if filepath is None:
        return "?"
    try:
        rel = Path(filepath).resolve().relative_to(ROOT)
    except ValueError:
        rel = Path(filepath)
    return f"{rel}:{lineno}"


def _is_ours(obj: object) -> bool:
    return str(getattr(obj, "canonical_path", "")).startswith("rxrealtime")


def _is_stream(attr: object) -> bool:
    annotation = str(getattr(attr, "annotation", "") or "")
    return annotation.startswith(STREAM_TYPES)


def _public_member(name: str) -> bool:
    return not name.startswith("_")


def find_missing() -> list[Missing]:
    """Every public object of the documented modules that lacks a docstring."""
    import griffe

    package = griffe.load(
        "rxrealtime", search_paths=[str(ROOT)], resolve_aliases=True, resolve_external=False
    )
    seen: set[str] = set()
    missing: set[Missing] = set()

    def need(obj: object, kind: str) -> None:
        target = getattr(obj, "final_target", obj)
        path = str(target.canonical_path)  # type: ignore[attr-defined]
        if path in seen:
            return
        seen.add(path)
        docstring = target.docstring  # type: ignore[attr-defined]
        if docstring is None or not docstring.value.strip():
            missing.add(Missing(path, kind, _where(target)))

    for module_path in documented_modules():
        module = package if module_path == "rxrealtime" else package[module_path[11:]]
        need(module, "module")
        names = [str(n) for n in (module.exports or [])]
        for name in names:
            if name.startswith("__"):
                continue
            obj = module[name]
            target = getattr(obj, "final_target", obj)
            if target.is_module:
                need(target, "module")
            elif target.is_class:
                need(target, "class")
                _check_class(target, need)
            elif target.is_function:
                need(target, "function")
            else:
                need(target, "attribute")
    return sorted(missing)


def _check_class(cls: object, need: object) -> None:
    for name, member in cls.all_members.items():  # type: ignore[attr-defined]
        if not _public_member(name):
            continue
        target = getattr(member, "final_target", member) if member.is_alias else member
        try:
            owner = target.parent
        except Exception:  # an alias griffe cannot resolve: not ours
            continue
        if not _is_ours(owner):
            continue  # inherited from reactivex, pydantic, msgspec, aiortc...
        if target.is_function:
            kind = "property" if "property" in target.labels else "method"
            need(target, kind)  # type: ignore[operator]
        elif target.is_attribute and "property" in target.labels:
            need(target, "property")  # type: ignore[operator]
        elif target.is_attribute and _is_stream(target):
            need(target, "stream")  # type: ignore[operator]
        elif target.is_class:
            need(target, "class")  # type: ignore[operator]


def read_pending() -> set[str]:
    """The names listed in ``docstrings_pending.txt`` (``#`` starts a comment)."""
    if not PENDING_FILE.exists():
        return set()
    names = set()
    for line in PENDING_FILE.read_text(encoding="utf-8").splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.add(name)
    return names


def check() -> tuple[list[str], list[str]]:
    """``(errors, notes)``: errors fail the docs build; notes list the pending names."""
    missing = find_missing()
    pending = read_pending()
    missing_paths = {m.path for m in missing}
    errors = [f"public name without a docstring: {m}" for m in missing if m.path not in pending]
    notes = [f"docstring pending (owner asked): {m}" for m in missing if m.path in pending]
    errors += [
        f"{PENDING_FILE.name} lists {name}, which has a docstring now (or no longer exists): "
        "remove the line"
        for name in sorted(pending - missing_paths)
    ]
    return errors, notes


def main() -> int:
    errors, notes = check()
    for note in notes:
        print(f"NOTE  {note}")
    for error in errors:
        print(f"ERROR {error}")
    print(f"docstrings: {len(errors)} error(s), {len(notes)} pending")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
