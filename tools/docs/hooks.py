"""MkDocs hooks (``hooks:`` in mkdocs.yml): what makes the site unable to drift.

* ``on_config``: the docstring gate (``check_docstrings.py``) runs first; a public name
  without a docstring stops the build. The version shown comes from
  ``rxrealtime/__init__.py``, read the way hatchling reads it for the wheel. The "API
  reference" section of the nav is made from ``public_api.documented_modules()``.
* ``on_files``: one reference page per documented module (``reference/*.md``, rendered
  by mkdocstrings, which shows the names of the module's ``__all__``).
* ``on_files``: every marble scenario of ``tests/marbles.py`` is run in virtual time
  and drawn as ``marbles/<id>.svg`` (generated files, nothing is written to docs/). A
  scenario whose operator no longer gives its expected records is a warning, so
  ``--strict`` fails; the picture always shows what the operator did.
* ``on_page_markdown``: ``<!-- marbles: NAME -->`` becomes the diagrams of operator
  NAME (the operators page must have one per operator), ``<!-- faults-table -->``
  the table of the embedded server's fault switches (from ``Faults``' field docstrings,
  with the ``rxrealtime serve`` flag of each), ``<!-- version -->`` the version.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for path in (HERE, ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import check_docstrings  # noqa: E402
import marbles_svg  # noqa: E402
from public_api import GROUPS, documented_modules, page_of, read_version  # noqa: E402

log = logging.getLogger("mkdocs.hooks.rxrealtime")

MARKER = re.compile(r"<!--\s*marbles:\s*([A-Za-z_][A-Za-z0-9_]*)\s*-->")
OPERATORS_PAGE = "operators.md"


def on_config(config: Any) -> Any:
    errors, notes = check_docstrings.check()
    for note in notes:
        log.info(note)
    if errors:
        for error in errors:
            log.error(error)
        raise PluginError(f"{len(errors)} docstring error(s); see above")
    version = read_version()
    config.extra["version"] = version
    config.site_name = f"{config.site_name} {version}"
    reference = [{module: page_of(module)} for module in documented_modules()]
    for i, entry in enumerate(config.nav or []):
        if isinstance(entry, dict) and "API reference" in entry:
            config.nav[i] = {"API reference": reference}
            break
    else:
        raise PluginError("mkdocs.yml: the nav has no 'API reference' section")
    return config


def reference_markdown(module: str) -> str:
    """The page of one documented module: mkdocstrings renders its ``__all__``."""
    if module != "rxrealtime":
        return f"# `{module}`\n\n::: {module}\n    options:\n      show_root_heading: false\n"
    from public_api import top_level_all

    names = [n for n in top_level_all() if not n.startswith("__")]
    modules = [n for n in names if f"rxrealtime.{n}" in documented_modules()]
    grouped = {n for group in GROUPS.values() for n in group}
    more = tuple(n for n in names if n not in grouped and n not in modules)
    lines = [
        "# `rxrealtime`",
        "",
        "::: rxrealtime",
        "    options:",
        "      show_root_heading: false",
        "      members: false",
        "",
        "Submodules with their own page: "
        + ", ".join(f"[`rxrealtime.{n}`]({n}.md)" for n in modules)
        + ".",
        "",
    ]
    for title, group in [*GROUPS.items(), ("More", more)]:
        present = [n for n in group if n in names]
        if not present:
            continue
        lines += [f"## {title}", ""]
        for name in present:
            lines += [f"::: rxrealtime.{name}", "    options:", "      heading_level: 3", ""]
    return "\n".join(lines)


def _marbles() -> Any:
    """``tests/marbles.py``, loaded by path (it is not part of the package)."""
    if "marbles" not in sys.modules:
        spec = importlib.util.spec_from_file_location("marbles", ROOT / "tests" / "marbles.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["marbles"] = module
        spec.loader.exec_module(module)
    return sys.modules["marbles"]


def on_files(files: Files, config: Any) -> Files:
    for documented in documented_modules():
        files.append(
            File.generated(config, page_of(documented), content=reference_markdown(documented))
        )
    module = _marbles()
    for marble in module.MARBLES:
        messages, session = module.run(marble)
        if messages != marble.expected:
            log.warning(
                "marble %s: %s no longer gives the records tests/marbles.py expects; "
                "the diagram shows what it gives now",
                marble.id,
                marble.expression,
            )
        if marble.disconnects is not None and session.calls != marble.disconnects:
            log.warning("marble %s: disconnect() called %s times", marble.id, session.calls)
        svg = marbles_svg.render(
            [(marble.labels.get(name, name), recs) for name, recs in marble.inputs.items()],
            marble.expression,
            messages,
            module.label,
            start=module.SUBSCRIBED,
            title=f"{marble.operator}: {marble.caption}",
        )
        files.append(File.generated(config, f"marbles/{marble.id}.svg", content=svg))
    return files


def _marble_markdown(name: str) -> str:
    scenarios = _marbles().by_operator().get(name)
    if not scenarios:
        raise PluginError(f"{OPERATORS_PAGE}: no marble scenario for {name!r} in tests/marbles.py")
    blocks = []
    for marble in scenarios:
        blocks.append(
            f"![Marble diagram of {name}: {marble.caption}](marbles/{marble.id}.svg)\n"
            f"{{ .marble }}\n\n"
            f"*{marble.caption}* (`{marble.expression}`; scenario `{marble.id}` in "
            f"`tests/marbles.py`)\n"
        )
    return "\n".join(blocks)


def _faults_table() -> str:
    from rxrealtime.server import Faults

    rows = ["| switch | default | `rxrealtime serve` flag | what it does |", "|---|---|---|---|"]
    for name, info in Faults.model_fields.items():
        default = info.get_default(call_default_factory=True)
        flag = "--" + name.replace("_", "-")
        text = " ".join((info.description or "").split()).replace("|", "\\|")
        rows.append(f"| `{name}` | `{default!r}` | `{flag}` | {text} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    src = page.file.src_uri
    if src == OPERATORS_PAGE:
        from rxrealtime import operators

        wanted = {n for n in operators.__all__ if callable(getattr(operators, n))}
        wanted -= {n for n in wanted if isinstance(getattr(operators, n), type)}
        found = set(MARKER.findall(markdown))
        if wanted - found:
            raise PluginError(
                f"{OPERATORS_PAGE} has no diagram marker for {sorted(wanted - found)}"
            )
    markdown = MARKER.sub(lambda m: _marble_markdown(m.group(1)), markdown)
    if "<!-- faults-table -->" in markdown:
        markdown = markdown.replace("<!-- faults-table -->", _faults_table())
    return markdown.replace("<!-- version -->", config.extra["version"])
