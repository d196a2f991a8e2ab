"""Writing results: ``<suite>.json``, the markdown tables (``latest.md``) and PNG plots.

``latest.md`` is rebuilt from every ``<suite>.json`` in the results folder, so running one
suite refreshes its section and keeps the others' latest figures.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

__all__ = ["SUITE_ORDER", "markdown", "plot", "summary_table", "write"]

logger = logging.getLogger(__name__)

SUITE_ORDER = ("decode", "dispatch", "e2e", "scale", "nats", "transport", "tapes", "imports")


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return "n/a"
        magnitude = abs(value)
        if magnitude >= 1000:
            return f"{value:,.0f}"
        if magnitude >= 100:
            return f"{value:.0f}"
        if magnitude >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines


def markdown(doc: dict[str, Any]) -> str:
    """One suite's result as markdown: figures, ratios, targets."""
    lines = [f"### {doc['title']}", ""]
    mode = "quick" if doc["quick"] else "full"
    lines += [f"{mode} run, {doc['repeats']} repeats, {doc['elapsed_s']} s. {doc['method']}", ""]
    extra_cols = sorted(
        {k for r in doc["rows"] for k in r} - {"name", "unit", "median", "min", "max", "n"}
    )
    lines += _table(
        ["measurement", "unit", "median", "min", "max", *extra_cols],
        [
            [r["name"], r["unit"], r["median"], r["min"], r["max"]]
            + [r.get(k, "") for k in extra_cols]
            for r in doc["rows"]
        ],
    )
    if doc["ratios"]:
        lines += [""]
        lines += _table(
            ["ratio (same run)", "median", "min", "max", "meaning"],
            [[r["name"], r["median"], r["min"], r["max"], r["meaning"]] for r in doc["ratios"]],
        )
    if doc["targets"]:
        lines += [""]
        lines += _table(
            ["target", "measured (median)", "threshold", "met", "note"],
            [
                [t["target"], t["value"], t["threshold"], t["met"], t["note"]]
                for t in doc["targets"]
            ],
        )
    return "\n".join(lines) + "\n"


def summary_table(docs: list[dict[str, Any]], elapsed_s: float | None = None) -> str:
    """Every target of the suites just run, met or missed, and a verdict line: what
    ``make bench`` ends with, so a missed target cannot scroll by unseen."""
    targets = [(d["suite"], t) for d in docs for t in d["targets"]]
    missed = [t for _, t in targets if not t["met"]]
    lines = ["## Summary: every target", ""]
    lines += _table(
        ["suite", "target", "measured (median)", "threshold", "met", "note"],
        [[s, t["target"], t["value"], t["threshold"], t["met"], t["note"]] for s, t in targets],
    )
    took = f" in {elapsed_s / 60:.1f} min" if elapsed_s is not None else ""
    quick = any(d["quick"] for d in docs)
    mode = " (quick run: figures are smoke, not measurements)" if quick else ""
    lines += [
        "",
        f"{len(targets) - len(missed)} of {len(targets)} targets met, {len(missed)} missed, "
        f"{len(docs)} suite(s){took}{mode}.",
    ]
    if missed:
        lines.append("Missed: " + "; ".join(str(t["target"]) for t in missed) + ".")
    return "\n".join(lines) + "\n"


def write(doc: dict[str, Any], out: Path) -> Path:
    """Write ``<suite>.json`` and rebuild ``latest.md``; returns the markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{doc['suite']}.json").write_text(json.dumps(doc, indent=2) + "\n")
    docs = []
    for suite in SUITE_ORDER:
        path = out / f"{suite}.json"
        if path.exists():
            docs.append(json.loads(path.read_text()))
    machine = doc["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    parts = [
        "# rxrealtime benchmark results",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
        f"{machine['platform']}; {versions}.",
        "",
        "Every figure is the median over repeats (min and max beside it); every ratio is "
        "taken between contenders measured in the same repeat.",
        "",
        "## Targets",
        "",
    ]
    parts += _table(
        ["suite", "target", "measured (median)", "threshold", "met", "note"],
        [
            [d["suite"], t["target"], t["value"], t["threshold"], t["met"], t["note"]]
            for d in docs
            for t in d["targets"]
        ],
    )
    parts += ["", "## Suites", ""]
    md = "\n".join(parts) + "\n" + "\n".join(markdown(d) for d in docs)
    path = out / "latest.md"
    path.write_text(md)
    return path


def plot(doc: dict[str, Any], out: Path) -> Path | None:
    """A PNG of the suite's figures with min-max whiskers; None if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed (pip install 'rxrealtime[bench]'): no PNG")
        return None
    if doc["suite"] == "scale":
        return _plot_scale(doc, out, plt)
    rows = doc["rows"]
    names = [r["name"] for r in rows]
    med = [r["median"] for r in rows]
    low = [r["median"] - r["min"] for r in rows]
    high = [r["max"] - r["median"] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(rows) + 1.5))
    ax.barh(range(len(rows)), med, xerr=[low, high], color="#4c72b0", capsize=2)
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    ax.invert_yaxis()
    units = sorted({r["unit"] for r in rows})
    ax.set_xlabel(", ".join(units) + " (median, whiskers min-max)")
    if doc["suite"] in ("decode", "dispatch"):
        ax.set_xscale("log")
    ax.set_title(doc["title"])
    fig.tight_layout()
    path = out / f"{doc['suite']}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_scale(doc: dict[str, Any], out: Path, plt: Any) -> Path:
    levels = doc["extra"].get("levels", [])
    ks = [lv["k"] for lv in levels]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = (
        ("tick_p99_ms", "tick latency p99 (ms)"),
        ("cpu_ms_per_s_per_session", "CPU ms per second per session"),
        ("rss_mib_per_session", "RSS MiB per session"),
    )
    for ax, (key, label) in zip(axes, panels, strict=True):
        stats = [lv[key] for lv in levels]
        med = [s["median"] for s in stats]
        err = [[s["median"] - s["min"] for s in stats], [s["max"] - s["median"] for s in stats]]
        ax.errorbar(ks, med, yerr=err, marker="o", capsize=3)
        ax.set_xlabel("concurrent sessions K")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(doc["title"])
    fig.tight_layout()
    path = out / "scale.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
