"""The benchmark suite runs and writes its results (tiny configuration; no speed asserted).

Figures on a shared machine say nothing in a test; what must hold is that each suite
runs end to end, that its contenders agree and deliver every frame (the suites check
that themselves and raise otherwise), and that it writes JSON, markdown and a plot.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rxrealtime import cli
from rxrealtime.cli.bench import Config, exit_code, run_suites, summary_table


def _check_doc(doc: dict, out: Path) -> None:
    assert (out / f"{doc['suite']}.json").is_file()
    assert doc["rows"], "a suite reports at least one figure"
    for row in doc["rows"]:
        assert row["min"] <= row["median"] <= row["max"] or math.isnan(row["median"])
    for target in doc["targets"]:
        assert set(target) >= {"target", "value", "threshold", "met"}
    assert f"### {doc['title']}" in (out / "latest.md").read_text()


def test_cli_bench_decode_prints_json_and_writes_results(tmp_path: Path, capsys) -> None:
    code = cli.main(["bench", "decode", "--quick", "--json", "--out", str(tmp_path)])
    assert code == 0
    (doc,) = json.loads(capsys.readouterr().out)["suites"]
    assert doc["suite"] == "decode"
    names = {row["name"] for row in doc["rows"]}
    assert {"protocol.decode", "pydantic(json.loads)", "pydantic validate_json"} <= names
    _check_doc(doc, tmp_path)


def _doc(suite: str, *met: bool) -> dict:
    targets = [
        {"target": f"{suite} target {i}", "value": 1.0, "threshold": ">= 1", "met": m, "note": ""}
        for i, m in enumerate(met)
    ]
    return {"suite": suite, "quick": False, "targets": targets}


def test_summary_lists_every_target_and_strict_fails_only_on_a_miss() -> None:
    good, bad = _doc("decode", True, True), _doc("e2e", True, False)
    text = summary_table([good, bad], elapsed_s=90)
    assert text.count("| decode |") == 2 and text.count("| e2e |") == 2
    assert "3 of 4 targets met, 1 missed, 2 suite(s) in 1.5 min." in text
    assert "Missed: e2e target 1." in text
    assert exit_code([good, bad], strict=True) == 1
    assert exit_code([good, bad], strict=False) == 0
    assert exit_code([good], strict=True) == 0


def test_cli_bench_ends_with_the_summary_and_writes_it(tmp_path: Path, capsys) -> None:
    code = cli.main(["bench", "decode", "--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    summary = (tmp_path / "summary.md").read_text()
    assert code == 0 and out.rstrip().endswith(summary.rstrip())
    assert "## Summary: every target" in summary and "quick run" in summary


def test_dispatch_suite_compares_streams_subject_and_callback_list(tmp_path: Path) -> None:
    (doc,) = run_suites(["dispatch"], Config(quick=True, repeats=2), tmp_path, log=print)
    names = " ".join(row["name"] for row in doc["rows"])
    for contender in ("HotStream.emit", "Subject.on_next", "callback list", "FrameRouter.route"):
        assert contender in names
    _check_doc(doc, tmp_path)


@pytest.mark.timeout(120)
def test_e2e_and_scale_suites_run_over_loopback(tmp_path: Path) -> None:
    docs = run_suites(["e2e", "scale"], Config(quick=True, repeats=1), tmp_path, log=print)
    e2e, scale = docs
    fps = {row["name"]: row["median"] for row in e2e["rows"] if row["name"].endswith(": fps")}
    assert len(fps) == 4 and all(v > 0 for v in fps.values())  # bare, ours, + tape, vendor
    levels = scale["extra"]["levels"]
    assert [(level["k"], level["size"]) for level in levels] == [(1, "64x48@5"), (3, "64x48@5")]
    for level in levels:  # each level ran in its own client and server processes
        assert level["connected"] == level["k"] and not level["connect_failed"]
        assert level["ticks_sent"] > 0
        for key in ("tick_p99_ms", "cpu_ms_per_s_per_session", "rss_mib_per_session"):
            assert set(level[key]) == {"median", "min", "max", "n"}
        assert "main" in level["threads"]["client"] and "main" in level["threads"]["server"]
        shares = level["profile"]["client"]
        assert shares and 95 <= sum(shares.values()) <= 100.5  # the main thread's split
    assert set(scale["extra"]["codec"]) == {"64x48@5"}
    for doc in docs:
        _check_doc(doc, tmp_path)
    markdown = (tmp_path / "latest.md").read_text()
    assert "## Targets" in markdown


def test_imports_suite_times_each_entry_point_in_a_fresh_interpreter(tmp_path: Path) -> None:
    (doc,) = run_suites(["imports"], Config(quick=True, repeats=1), tmp_path, log=print)
    assert [row["name"] for row in doc["rows"]] == [
        "import rxrealtime",
        "import rxrealtime.protocol",
        "import rxrealtime.operators",
        "rxrealtime.operators + a first operator",
        "rxrealtime + a Session",
    ]
    light = [t for t in doc["targets"] if "loads no" in t["target"]]
    assert len(light) == 3 and all(t["met"] for t in light)  # which modules: not a timing
    assert doc["extra"]["slowest"]["rxrealtime.operators"][0][0] == "rxrealtime.operators"
    _check_doc(doc, tmp_path)
