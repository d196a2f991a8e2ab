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
from rxrealtime.bench import Config, run_suites


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
    assert [level["k"] for level in levels] == [1, 3]
    assert all(level["ticks_sent"] > 0 for level in levels)
    for doc in docs:
        _check_doc(doc, tmp_path)
    markdown = (tmp_path / "latest.md").read_text()
    assert "## Targets" in markdown
