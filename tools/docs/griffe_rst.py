"""A griffe extension that lets mkdocstrings render rxrealtime's reST-flavoured docstrings.

The docstrings use Sphinx roles (``:class:`~rxrealtime.Session```, ``:func:`cost```)
and ``::`` before a literal block. This extension rewrites them into Markdown when the
package is loaded:

* a role naming a public object (one the API reference renders) becomes an autorefs
  link to the place the reference renders it, so the link works and is checked;
* a role naming an object that exists but is not public (``rxrealtime.core.machine.SessionCore``)
  becomes plain code: the reference does not document it;
* a role naming nothing at all stays a link to that name, which the ``--strict`` build
  reports as an unresolved reference: a renamed or removed name fails the build;
* a paragraph ending in ``::`` ends in ``:`` (the indented block after it is code in
  Markdown already), and ``>>>`` examples become a fenced ``pycon`` block;
* special methods (``__repr__``, ``__aenter__``...) are left out of the reference.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import griffe

sys.path.insert(0, str(Path(__file__).resolve().parent))

from public_api import documented_modules

ROLE = re.compile(r":(?:py:)?(class|func|meth|attr|mod|data|exc|obj|const):`(~?)([^`]+)`")
LITERAL = re.compile(r"::$", re.MULTILINE)


def _target(obj: Any) -> Any:
    try:
        return obj.final_target if obj.is_alias else obj
    except Exception:
        return None


def _documented_module(canonical: str) -> str | None:
    best = None
    for module in documented_modules():
        if module != "rxrealtime" and canonical.startswith(module + "."):
            if best is None or len(module) > len(best):
                best = module
    return best


def public_ids(pkg: Any) -> dict[str, str]:
    """Canonical path -> the identifier the API reference renders it under."""
    ids: dict[str, str] = {}
    for module_path in documented_modules():
        module = pkg if module_path == "rxrealtime" else pkg[module_path[len("rxrealtime.") :]]
        ids.setdefault(str(module.canonical_path), module_path)
        for name in module.exports or []:
            name = str(name)
            if name.startswith("__") or name not in module.members:
                continue
            target = _target(module.members[name])
            if target is None:
                continue
            canonical = str(target.canonical_path)
            if target.is_module:
                ids.setdefault(canonical, canonical)
                continue
            home = _documented_module(canonical)
            if home is not None and home != module_path:
                continue  # rendered under its own documented module, which comes by itself
            doc_id = f"{module_path}.{name}"
            ids.setdefault(canonical, doc_id)
            if target.is_class:
                for member_name, member in target.all_members.items():
                    if member_name.startswith("_"):
                        continue
                    member_target = _target(member)
                    if member_target is not None:
                        ids.setdefault(str(member_target.canonical_path), f"{doc_id}.{member_name}")
                        ids.setdefault(f"{canonical}.{member_name}", f"{doc_id}.{member_name}")
    # names re-exported by a second documented module (operators.Rate) point home
    for module_path in documented_modules():
        module = pkg if module_path == "rxrealtime" else pkg[module_path[len("rxrealtime.") :]]
        for name in module.exports or []:
            name = str(name)
            if name.startswith("__") or name not in module.members:
                continue
            target = _target(module.members[name])
            if target is not None and not target.is_module:
                ids.setdefault(str(target.canonical_path), f"{module_path}.{name}")
    return ids


def _lookup(scope: Any, dotted: str) -> Any:
    obj = scope
    for part in dotted.split("."):
        obj = _target(obj)
        if obj is None or part not in obj.members:
            return None
        obj = obj.members[part]
    return _target(obj)


def resolve(pkg: Any, owner: Any, ref: str) -> Any:
    """The object ``ref`` names, seen from ``owner``'s docstring, or None."""
    if ref.startswith("rxrealtime."):
        return _lookup(pkg, ref[len("rxrealtime.") :])
    if ref == "rxrealtime":
        return pkg
    if ref.startswith("."):  # relative to the docstring's package
        module = owner
        while module is not None and not module.is_module:
            module = module.parent
        return _lookup(module, ref.lstrip(".")) if module is not None else None
    scope = owner
    while scope is not None:
        found = _lookup(scope, ref)
        if found is not None:
            return found
        scope = scope.parent
    return None


def convert(text: str, pkg: Any, owner: Any, ids: dict[str, str]) -> str:
    """``text`` with roles as links or code and ``::`` as ``:``."""

    def role(match: re.Match[str]) -> str:
        short, ref = match.group(2) == "~", match.group(3).strip()
        shown = ref.rsplit(".", 1)[-1] if short else ref
        target = resolve(pkg, owner, ref)
        if target is None:
            return f"[`{shown}`][{ref}]"  # names nothing: the strict build reports it
        doc_id = ids.get(str(target.canonical_path))
        if doc_id is None:
            return f"`{shown}`"  # exists, but the reference does not document it
        return f"[`{shown}`][{doc_id}]"

    return _fence_doctests(LITERAL.sub(":", ROLE.sub(role, text)))


def _fence_doctests(text: str) -> str:
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        if lines[i].lstrip().startswith(">>>"):
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            out.append(f"{indent}```pycon")
            while i < len(lines) and lines[i].strip():
                out.append(lines[i])
                i += 1
            out.append(f"{indent}```")
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


class RstToMarkdown(griffe.Extension):
    """Rewrite Sphinx roles and ``::`` in every docstring of the loaded package."""

    def on_package(self, *, pkg: Any, loader: Any, **kwargs: Any) -> None:
        if pkg.name != "rxrealtime":
            return
        ids = public_ids(pkg)
        special = []
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = convert(obj.docstring.value, pkg, obj, ids)
            name = obj.name
            if obj.is_function and name.startswith("__") and name.endswith("__"):
                if name != "__init__" and obj.parent is not None and obj.parent.is_class:
                    special.append(obj)
        for obj in special:
            obj.parent.del_member(obj.name)


def _walk(obj: Any) -> Any:
    yield obj
    for member in list(obj.members.values()):
        if member.is_alias:
            continue
        yield from _walk(member)
