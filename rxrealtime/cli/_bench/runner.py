"""Running suites from the command line: ``rxrealtime bench`` and ``python -m benchmarks``.

Progress goes to stderr; stdout carries the markdown tables, or with ``--json`` one JSON
document ``{"suites": [...]}`` so scripts can read the figures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._common import Config, SuiteResult
from ._report import markdown, plot, summary_table, write

__all__ = ["DEFAULT_OUT", "SUITES", "add_arguments", "exit_code", "main", "run_suites"]

SUITES = (
    "decode", "dispatch", "e2e", "scale", "nats", "transport", "native", "tapes", "imports",
    "secrets",
)  # fmt: skip
DEFAULT_OUT = Path("benchmarks") / "results"


def _suite(name: str) -> Callable[[Config], SuiteResult]:
    # Imported on demand: e2e and scale pull in aiortc, decode does not need it.
    module = importlib.import_module(f"{__package__}.{name}")
    run: Callable[[Config], SuiteResult] = module.run
    return run


def run_suites(
    names: Sequence[str],
    config: Config,
    out: Path = DEFAULT_OUT,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
) -> list[dict[str, Any]]:
    """Run the named suites in order; write JSON, markdown and PNG for each."""
    docs = []
    for name in names:
        log(f"bench {name}: running{' (quick)' if config.quick else ''}...")
        start = time.perf_counter()
        doc = _suite(name)(config).as_json()
        md_path = write(doc, out)
        png = plot(doc, out)
        log(
            f"bench {name}: done in {time.perf_counter() - start:.1f} s -> "
            f"{out / (name + '.json')}, {md_path}" + (f", {png}" if png else "")
        )
        docs.append(doc)
    return docs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench options, shared by ``rxrealtime bench`` and ``python -m benchmarks``."""
    parser.add_argument(
        "suites", nargs="*", metavar="SUITE", help=f"among {', '.join(SUITES)} (default: all)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--quick", action="store_true", help="tiny configuration (smoke test)")
    parser.add_argument("--repeats", type=int, default=None, help="override the repeat count")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"results folder (default: {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 when any target is missed (for CI of a performance change)",
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Run what parsed ``args`` ask for and end with the summary of every target.

    The exit code is 2 for an unknown suite, 1 with ``--strict`` when a target was
    missed, else 0: a missed target is reported either way, failing is opt-in because
    a shared machine's noise can push a figure past its threshold.
    """
    names = list(dict.fromkeys(args.suites or SUITES))
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        print(f"unknown suite(s): {', '.join(unknown)}; pick from {SUITES}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    docs = run_suites(names, Config(quick=args.quick, repeats=args.repeats), args.out)
    elapsed = time.perf_counter() - started
    summary = summary_table(docs, elapsed)
    missed = [t["target"] for d in docs for t in d["targets"] if not t["met"]]
    if args.json:
        print(
            json.dumps({"suites": docs, "elapsed_s": round(elapsed, 1), "missed": missed}, indent=2)
        )
        print(summary, file=sys.stderr)
    else:
        print("\n".join(markdown(d) for d in docs))
        print(summary)
    (args.out / "summary.md").write_text(summary)
    return exit_code(docs, strict=args.strict)


def exit_code(docs: list[dict[str, Any]], *, strict: bool) -> int:
    """1 when ``strict`` and a target of ``docs`` was missed, else 0."""
    return 1 if strict and any(not t["met"] for d in docs for t in d["targets"]) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="rxrealtime benchmark suite"
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
