"""The documentation cannot drift from the code.

Fast checks (in ``make test``): one version everywhere it is written, the streams table
against ``SessionStreams``, a diagram marker and a marble scenario per operator, every
page in the nav, the public API's modules and groups, the marble renderer. With griffe
installed (``make docs`` installs it), the docstring gate. The site build itself
(``--strict``, no asset from a CDN) runs under ``make wheel-test``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT / "tools" / "docs"))

import marbles_svg  # noqa: E402
import public_api  # noqa: E402
from marbles import MARBLES, by_operator, label, run  # noqa: E402

import rxrealtime as rt  # noqa: E402
from rxrealtime import operators as rto  # noqa: E402

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before 3.11
    import tomli as tomllib


def operator_functions() -> set[str]:
    return {n for n in rto.__all__ if inspect.isfunction(getattr(rto, n))}


# -- one version --------------------------------------------------------------------------


def test_the_version_is_declared_once_and_read_everywhere() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in pyproject["project"], "the version lives in rxrealtime/_version.py"
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["hatch"]["version"]["path"] == "rxrealtime/_version.py"
    assert rt.__version__ == public_api.read_version()  # what hatchling and the docs read


def test_the_changelog_keeps_a_changelog_and_its_newest_release_is_the_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.MULTILINE)
    assert headings[0][0] == "Unreleased", "Keep a Changelog: Unreleased comes first"
    releases = [(v, date) for v, date in headings[1:]]
    assert releases, "no release in CHANGELOG.md"
    newest, date = releases[0]
    assert newest == rt.__version__, f"CHANGELOG's newest release {newest} != {rt.__version__}"
    assert date, "a release heading carries its date: ## [X.Y.Z] - YYYY-MM-DD"
    for section in re.findall(r"^### (.+)$", text, re.MULTILINE):
        assert section in {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_the_cli_reports_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    from rxrealtime.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"rxrealtime {rt.__version__}"


# -- the streams table --------------------------------------------------------------------


def streams_table() -> dict[str, str]:
    text = (DOCS / "streams.md").read_text(encoding="utf-8")
    section = text.split("## Every stream of a session", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"^\| `([a-z_]+)` \|.*\| ([a-z]+) \|$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_the_streams_table_lists_every_stream_with_its_replay() -> None:
    from rxrealtime.session_streams import SessionStreams
    from rxrealtime.streams import LatestStream, StateStream

    def replay(stream: object) -> str:
        if isinstance(stream, StateStream):
            return "current"
        if isinstance(stream, LatestStream):
            return "latest"
        return "nothing"

    actual = {name: replay(s) for name, s in SessionStreams().streams.items()}
    documented = streams_table()
    assert set(documented) == set(actual), (
        f"docs/streams.md lacks {sorted(set(actual) - set(documented))}, "
        f"has stale rows {sorted(set(documented) - set(actual))}"
    )
    assert documented == actual


# -- operators and their diagrams ---------------------------------------------------------


def test_every_operator_has_a_section_with_its_diagram_marker() -> None:
    text = (DOCS / "operators.md").read_text(encoding="utf-8")
    markers = set(re.findall(r"<!--\s*marbles:\s*(\w+)\s*-->", text))
    assert markers == operator_functions() == set(by_operator())
    for name in operator_functions():
        assert f"\n## {name}\n" in text, f"operators.md has no section for {name}"


def test_a_marble_diagram_shows_what_the_operator_emitted() -> None:
    marble = next(m for m in MARBLES if m.id == "billed_seconds-reconnect")
    messages, _ = run(marble)
    svg = marbles_svg.render(list(marble.inputs.items()), marble.expression, messages, label)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert marble.expression in svg
    for record in messages:
        if record.value.kind == "N":
            assert f">{label(record.value.value)}</text>" in svg
    # a different behaviour is a different picture; the same run the same bytes
    changed = [*messages[:-2], messages[-1]]
    assert marbles_svg.render(list(marble.inputs.items()), marble.expression, changed, label) != svg
    assert (
        marbles_svg.render(list(marble.inputs.items()), marble.expression, messages, label) == svg
    )


# -- pages and the public API -------------------------------------------------------------


def test_every_page_is_in_the_nav_and_every_nav_page_exists() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = config.split("\nnav:", 1)[1]
    listed = set(re.findall(r":\s*([\w/.-]+\.md)\b", nav))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages - listed == set(), "pages missing from the nav of mkdocs.yml"
    generated = {public_api.page_of(m) for m in public_api.documented_modules()}
    assert listed - pages - generated == set(), "nav entries without a page"


def test_every_documented_module_exports_names_that_exist() -> None:
    for module_name in public_api.documented_modules():
        module = importlib.import_module(module_name)
        assert module.__doc__, f"{module_name} has no module docstring"
        for name in module.__all__:
            assert hasattr(module, name), f"{module_name}.__all__ names {name}, which is missing"


def test_every_top_level_name_has_a_group_on_the_reference_page() -> None:
    modules = {m.rsplit(".", 1)[-1] for m in public_api.documented_modules()}
    grouped = {n for group in public_api.GROUPS.values() for n in group}
    names = {n for n in rt.__all__ if not n.startswith("__") and n not in modules}
    assert names - grouped == set(), "add them to a group of tools/docs/public_api.py"
    assert grouped - names == set(), "a group names what rxrealtime.__all__ does not export"


def test_every_public_name_has_a_docstring() -> None:
    pytest.importorskip("griffe")
    import check_docstrings

    errors, _ = check_docstrings.check()
    assert errors == []


# -- the site -----------------------------------------------------------------------------

CDN = re.compile(
    r"""<(?:script|img|iframe)[^>]+src=["']https?://|<link[^>]+href=["']https?://"""
    r"""|@import\s+url\(["']?https?://|fonts\.googleapis|fonts\.gstatic""",
    re.IGNORECASE,
)


@pytest.mark.docs_build
@pytest.mark.skipif(
    os.environ.get("RXREALTIME_PACKAGE_TESTS") != "1", reason="`make wheel-test` builds the site"
)
@pytest.mark.timeout(300)
def test_the_site_builds_strict_with_diagrams_and_nothing_from_a_cdn(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"rxrealtime {rt.__version__}" in (site / "index.html").read_text(encoding="utf-8")
    operators = (site / "operators" / "index.html").read_text(encoding="utf-8")
    for marble in MARBLES:
        svg = (site / "marbles" / f"{marble.id}.svg").read_text(encoding="utf-8")
        assert marble.expression.replace('"', "&quot;") in svg or marble.expression in svg
        assert f"marbles/{marble.id}.svg" in operators
    for module in public_api.documented_modules():
        page = public_api.page_of(module).removesuffix(".md")
        page = page.removesuffix("/index") if page.endswith("/index") else page
        assert (site / page / "index.html").exists() or (site / f"{page}.html").exists(), page
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not CDN.search(text), f"{page.relative_to(site)} loads {CDN.search(text)}"
    for css in site.rglob("*.css"):
        assert not CDN.search(css.read_text(encoding="utf-8")), css
