"""``rxrealtime check``, ``--api-key-file`` and ``demo --transport livekit`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest_livekit import require_livekit

from rxrealtime.server.livekit_server import free_port

CLI = [sys.executable, "-m", "rxrealtime.cli"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


async def test_check_passes_against_a_server_and_reads_the_key_from_a_file(
    server, tmp_path: Path
) -> None:
    import asyncio

    key_file = tmp_path / "key"
    key_file.write_text(server.api_key + "\n")
    out = await asyncio.to_thread(run, "check", server.url, "--api-key-file", str(key_file))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all steps passed" in out.stdout and server.api_key not in out.stdout


async def test_check_reports_a_wrong_key_with_a_hint_as_json(server) -> None:
    import asyncio

    out = await asyncio.to_thread(
        run, "check", server.url, "--api-key", "sk-wrong-key-0000", "--json"
    )
    report = json.loads(out.stdout)
    assert out.returncode == 1 and report["ok"] is False
    assert [(s["name"], s["ok"]) for s in report["steps"]] == [("websocket", True), ("auth", False)]
    assert "key" in report["steps"][-1]["hint"]


def test_check_reports_a_closed_port() -> None:
    out = run("check", f"ws://127.0.0.1:{free_port()}", "--api-key", "k" * 8, "--timeout", "2")
    assert out.returncode == 1
    assert "FAIL websocket" in out.stdout and "is the server running" in out.stdout


def test_a_missing_key_file_is_a_one_line_error(tmp_path: Path) -> None:
    out = run("check", "ws://127.0.0.1:9", "--api-key-file", str(tmp_path / "nope"))
    assert out.returncode == 1 and "cannot read the API key file" in out.stderr
    assert "Traceback" not in out.stderr


def test_help_warns_that_a_key_on_the_command_line_is_visible() -> None:
    for command in ("watch", "serve", "check"):
        assert "process list" in " ".join(run(command, "--help").stdout.split())


def test_demo_runs_over_livekit() -> None:
    require_livekit()
    out = run("demo", "--seconds", "4", "--json", "--transport", "livekit", timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["ticks"] >= 2 and report["frames_received"] > 0 and report["errors"] == []
