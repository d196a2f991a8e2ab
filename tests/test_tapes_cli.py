"""``rxrealtime tape show``, ``replay`` and ``--tape`` on ``demo``, ``watch`` and ``serve``."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import rxrealtime as rt
from rxrealtime import cli
from rxrealtime import protocol as p

DEMO = Path(__file__).resolve().parents[1] / "examples" / "tapes" / "demo.tape.jsonl"
CLI = [sys.executable, "-m", "rxrealtime.cli"]


def test_tape_show_prints_the_summary_and_a_compact_timeline(capsys) -> None:
    assert cli.main(["tape", "show", str(DEMO)]) == 0
    out = capsys.readouterr().out
    for line in (
        "duration    29.575 s, 75 records",
        "ticks       23 delivered, 0 refused; 26 s billed over 2 server session(s)",
        "reconnects  1, downtime 0.499 s",
        "errors      2: ConnectionLost 1, RequestRejected 1",
        "ticks 1 → 8 (8 ticks, to 18.679 s)",
        "no tick for 4.000 s",
        "link down (code 1006, ConnectionLost)",
        "model       mirage_v2, tier not recorded (format 1 tape: priced as standard)",
    ):
        assert line in out
    assert "api_key=***" in out and len(out.splitlines()) < 60


def test_tape_show_json(capsys) -> None:
    assert cli.main(["tape", "show", "--json", str(DEMO)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["ticks"], doc["billed_s"], doc["reconnects"]) == (23, 26, 1)
    assert doc["errors"] == {"ConnectionLost": 1, "RequestRejected": 1}
    assert doc["prompts"][-1]["success"] is False and doc["timeline"][0]["text"]


def test_bad_tapes_are_one_line_errors(tmp_path: Path, capsys) -> None:
    empty, newer = tmp_path / "empty.tape.jsonl", tmp_path / "newer.tape.jsonl"
    empty.write_bytes(b"")
    newer.write_text(f'{{"rxrealtime_tape": {rt.tapes.FORMAT_VERSION + 1}}}\n')
    cases = [
        (["tape", "show", str(empty)], "empty file"),
        (["tape", "show", str(tmp_path)], "is a directory"),
        (["tape", "show", str(tmp_path / "missing")], "no such file"),
        (["replay", str(newer)], "tape format 3 needs a newer rxrealtime"),
    ]
    for argv, text in cases:
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert text in err and err.count("\n") == 1 and "Traceback" not in err


def test_replay_drives_the_terminal_view(capsys) -> None:
    assert cli.main(["replay", str(DEMO), "--speed", "100", "--rate", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "rxrealtime replay · mirage_v2 · 100x" in out
    assert out.rstrip().endswith(
        f"replayed 29.6 s of {DEMO} at 100x: 26 s billed over 23 ticks, cost 1.30, 2 error(s)"
    )


def test_demo_records_a_tape(tmp_path: Path, capsys) -> None:
    path = tmp_path / "demo.tape.jsonl.gz"
    argv = ["demo", "--seconds", "1.2", "--tick-interval", "0.2", "--json", "--tape", str(path)]
    assert cli.main(argv) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    tape = rt.tapes.load(path)
    summary = rt.tapes.summarize(tape)
    assert tape.complete and summary.ticks == report["ticks"] > 0
    assert summary.states == report["state_changes"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(60)
def test_watch_records_what_serve_plays_from_a_tape(tmp_path: Path, capsys) -> None:
    port, path = free_port(), tmp_path / "watched.tape.jsonl"
    server = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--api-key", "k-tape", "--tape", str(DEMO)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None and "listening" in server.stdout.readline()
        argv = [
            "watch", f"ws://127.0.0.1:{port}", "--model", "lucy-2.6", "--api-key", "k-tape",
            "--prompt", "anime", "--seconds", "2.6", "--json", "--tape", str(path),
        ]  # fmt: skip
        assert cli.main(argv) == 0
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
        if server.stdout is not None:
            server.stdout.close()
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    tape = rt.tapes.load(path)
    ticks = [r.value.seconds for r in tape.records if isinstance(r.value, p.GenerationTick)]
    assert ticks == [1, 2] == list(range(1, summary["ticks"] + 1))  # the demo tape's first two
    assert tape.complete and "api_key=***" in tape.header.url and b"k-tape" not in path.read_bytes()


def test_tape_show_sums_up_glass_to_glass_latency_of_the_stats_records(
    tmp_path: Path, capsys
) -> None:
    from test_tapes import session_records, write_tape

    from rxrealtime.latency import GlassToGlass
    from rxrealtime.quality import SessionStats

    def stats(latency: GlassToGlass | None) -> SessionStats:
        return SessionStats(1.0, 30.0, 30.0, latency=latency)

    figures = [None, GlassToGlass(first_frame_s=0.84)]  # before the first frame; no samples
    figures += [GlassToGlass(0.84, p50 / 1000, p90 / 1000, n, "picture-stamp")
                for p50, p90, n in ((40, 60, 30), (44, 90, 60), (42, 61, 90))]  # fmt: skip
    records = [*session_records(6), *((1.5 + i, "stats", stats(g)) for i, g in enumerate(figures))]
    path = write_tape(tmp_path / "stats.tape.jsonl", sorted(records, key=lambda r: r[0]))
    assert cli.main(["tape", "show", "--no-timeline", str(path)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "latency" in ln)
    assert line == (
        "  latency     glass-to-glass p50 42 ms, p90 61 ms (medians of 3 stats records; "
        "worst p90 90 ms), 90 samples by picture-stamp; first frame 0.84 s"
    )
    assert cli.main(["tape", "show", "--json", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["stats_records"] == 5
    assert doc["latency"] == {
        "records": 3, "p50_s": 0.042, "p90_s": 0.061, "worst_p90_s": 0.09, "samples": 90,
        "first_frame_s": 0.84, "source": "picture-stamp",
    }  # fmt: skip
    # stats without a single sample: n/a, never 0
    unmatched = [
        (1.5, "stats", stats(GlassToGlass(first_frame_s=1.2))),
        (2.5, "stats", stats(None)),
    ]
    records = [*session_records(3), *unmatched]
    path = write_tape(tmp_path / "unmatched.tape.jsonl", sorted(records, key=lambda r: r[0]))
    assert cli.main(["tape", "show", "--no-timeline", str(path)]) == 0
    out = capsys.readouterr().out
    assert "latency     glass-to-glass n/a (2 stats records, no samples); first frame 1.20 s" in out
    assert " 0 ms" not in out


def test_tape_show_says_when_a_tape_has_no_stats(capsys) -> None:
    assert cli.main(["tape", "show", "--no-timeline", str(DEMO)]) == 0
    out = capsys.readouterr().out
    assert "latency     n/a (no stats recorded: record(..., stats=True) records them)" in out
    assert cli.main(["tape", "show", "--json", str(DEMO)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["stats_records"], doc["latency"]) == (0, None)
