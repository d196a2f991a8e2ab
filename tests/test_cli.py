"""The command line as a user runs it: real subprocesses, real server, loopback only."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from conftest import wait_until

import rxrealtime as rt

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "rxrealtime.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_json_reports_ticks_frames_acks_and_no_errors() -> None:
    out = subprocess.run(
        [*CLI, "demo", "--seconds", "5", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["ticks"] >= 3
    assert report["billed_seconds"] == report["ticks"]
    assert report["frames_received"] > 0
    assert report["prompt_acks"] == 2  # the initial prompt and the change halfway
    assert report["errors"] == []
    assert report["state_changes"] == [
        "disconnected", "connecting", "connected", "generating", "disconnected",
    ]  # fmt: skip


def test_demo_rejects_bad_arguments() -> None:
    out = subprocess.run([*CLI, "demo", "--seconds", "-1"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "must be > 0" in out.stderr


async def test_serve_accepts_sessions_and_stops_on_sigint() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *CLI, "serve", "--port", str(port), "--api-key", "k-123", "--tick-interval", "0.2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert f"ws://127.0.0.1:{port}" in line.decode()
        session = rt.Session(f"ws://127.0.0.1:{port}", api_key="k-123")
        ticks: list[object] = []
        session.generation_ticks.subscribe(ticks.append)
        async with session.connect(local_track=rt.media.SyntheticTrack()):
            await wait_until(lambda: len(ticks) >= 2)
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0


def test_serve_without_key_explains_how_to_give_one() -> None:
    env = {k: v for k, v in os.environ.items() if k != "RXREALTIME_API_KEY"}
    out = subprocess.run([*CLI, "serve"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2
    assert "--api-key" in out.stderr


def test_readme_quickstart_example_runs() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "state: generating" in out.stdout
    assert "billed 1 s" in out.stdout
    assert "error:" not in out.stdout


async def test_serve_fault_flags_reach_the_server() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *CLI, "serve", "--port", str(port), "--api-key", "k-123", "--tick-interval", "0.1",
        "--refuse-first", "1", "--bad-frames", "malformed", "binary",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        await asyncio.wait_for(proc.stdout.readline(), 30)
        retry = rt.ReconnectPolicy(initial_delay_s=0.05)
        session = rt.Session(f"ws://127.0.0.1:{port}", api_key="k-123", reconnect=retry)
        errors: list[rt.RealtimeError] = []
        session.errors.subscribe(errors.append)
        async with session.connect(local_track=rt.media.SyntheticTrack(64, 48)):
            await wait_until(lambda: len(errors) >= 3)
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 30)
    assert type(errors[0]) is rt.ServerError and "capacity" in str(errors[0])
    reasons = {e.reason.split(" ")[0] for e in errors[1:] if isinstance(e, rt.ProtocolError)}
    assert {"binary", "Input"} <= reasons  # binary frame; "Input data was truncated"


def test_serve_rejects_invalid_fault_values() -> None:
    out = subprocess.run(
        [*CLI, "serve", "--api-key", "k", "--ack-delay-s", "-3"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert "ack_delay_s" in out.stderr


def test_demo_records_the_generated_video(tmp_path: Path) -> None:
    import av

    out_file = tmp_path / "out.mp4"
    out = subprocess.run(
        [*CLI, "demo", "--seconds", "3", "--json", "--record", str(out_file)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    with av.open(str(out_file)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert 0 < frames <= report["frames_received"]


def test_demo_with_an_unwritable_record_path_fails_with_one_line() -> None:
    out = subprocess.run(
        [*CLI, "demo", "--seconds", "2", "--record", "/no/such/dir/out.mp4"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert "/no/such/dir/out.mp4" in out.stderr


def run_models(*flags: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [*CLI, "models", *flags], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "Warning" not in out.stderr  # listing the old names resolves none of them
    return out


def test_models_prints_the_current_catalogue_as_a_table() -> None:
    out = run_models().stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  lucy")}
    assert set(rows) == set(rt.MODELS)
    assert rows["lucy-2.6"][1:] == ["1280x720", "30", "standard,", "fast"]
    assert rows["lucy-2.1"][1:] == ["1280x720", "30", "standard"]
    assert rows["lucy-restyle-latest"][1:] == ["1280x704", "30", "standard", "lucy-restyle-2"]
    assert rows["lucy-latest"][-1] == "lucy-2.5"
    for column in ("name", "size", "fps", "speed tiers", "alias of"):
        assert column in out
    assert "default: lucy-2.6" in out and "fast 2x" in out
    assert "mirage" not in out and "--all" in out


def test_models_all_adds_the_deprecated_names_and_what_they_resolve_to() -> None:
    out = run_models("--all").stdout
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert lines["mirage_v2"].split()[-1] == "lucy-restyle-2"
    assert lines["mirage"].split()[-1] == "lucy-restyle-2"
    assert lines["lucy_2_rt"].split()[-1] == "lucy-2.1"
    assert "(none: its own endpoint)" in lines["avatar-live"]
    assert "deprecated: resolves to" in out and set(rt.MODELS) <= set(lines)


def test_models_json_is_the_rows_of_rt_models_list() -> None:
    rows = json.loads(run_models("--json").stdout)
    assert [r["name"] for r in rows] == [m.name for m in rt.models.list()]
    lucy = next(r for r in rows if r["name"] == "lucy-2.6")
    assert lucy == {
        "name": "lucy-2.6", "width": 1280, "height": 720, "fps": 30,
        "speeds": ["standard", "fast"], "alias_of": None, "replaced_by": None,
        "deprecated": False, "default": True,
    }  # fmt: skip
    everything = json.loads(run_models("--all", "--json").stdout)
    old = {r["name"]: r["replaced_by"] for r in everything if r["deprecated"]}
    assert old == {"mirage_v2": "lucy-restyle-2", "mirage": "lucy-restyle-2",
                   "lucy_2_rt": "lucy-2.1", "avatar-live": None}  # fmt: skip
