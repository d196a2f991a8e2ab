"""``rxrealtime watch`` as a user runs it: a subprocess against the embedded server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import aiohttp
import av
import numpy as np
from conftest import wait_until

import rxrealtime as rt

CLI = [sys.executable, "-m", "rxrealtime.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_with_key(key: str) -> dict[str, str]:
    return {**os.environ, "RXREALTIME_API_KEY": key}


async def metric(port: int, name: str) -> float:
    """Sum of a metric's samples on the real /metrics endpoint (0 until it exists)."""
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            text = await response.text()
    except aiohttp.ClientError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{")
    )


async def test_watch_exports_metrics_and_prints_a_billing_summary_on_sigint(
    server: rt.EmbeddedServer,
) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *CLI, "watch", server.url, "--model", "lucy-2.6", "--metrics-port", str(port),
        "--rate", "0.01", "--prompt", "anime", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env_with_key(server.api_key),
    )  # fmt: skip
    billed = 0.0
    try:

        async def billed_enough() -> bool:
            nonlocal billed
            billed = await metric(port, "rxrealtime_billed_seconds_total")
            return billed >= 3

        deadline = asyncio.get_running_loop().time() + 60
        while not await billed_enough():
            assert proc.returncode is None, "watch exited early"
            assert asyncio.get_running_loop().time() < deadline, "no billing in /metrics"
            await asyncio.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    out, err = stdout.decode(), stderr.decode()
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])  # stdout is that one line
    assert out.strip().count("\n") == 0
    assert summary["ended_by"] == "SIGINT"
    assert summary["billed_seconds"] >= billed >= 3
    assert summary["ticks"] == summary["billed_seconds"]  # one server session, 1 s a tick
    assert Decimal(summary["cost"]) == Decimal("0.01") * summary["billed_seconds"]
    assert len(summary["session_ids"]) == 1 and summary["errors"] == []
    assert summary["model"] == "lucy-2.6"
    assert server.api_key not in out + err and "api_key=***" in summary["url"]
    await wait_until(lambda: not server.sessions)  # the session was closed cleanly


def write_video(path: Path, frames: int = 20) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.time_base = Fraction(1, 10)
        for i in range(frames):
            rgb = np.full((64, 64, 3), (i * 12) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


async def test_watch_streams_a_video_file_until_its_time_limit(
    server: rt.EmbeddedServer, tmp_path: Path
) -> None:
    video = tmp_path / "clip.mp4"
    write_video(video)
    proc = await asyncio.create_subprocess_exec(
        *CLI, "watch", server.url, "--model", "lucy-2.6", "--video", str(video),
        "--seconds", "2", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env_with_key(server.api_key),
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    summary = json.loads(stdout.decode().strip().splitlines()[-1])
    assert summary["ended_by"] == "time limit"
    assert summary["ticks"] >= 2  # the server only bills once frames of the file arrive
    assert summary["cost"] is None


async def test_watch_with_a_missing_video_file_fails_clearly(server: rt.EmbeddedServer) -> None:
    proc = await asyncio.create_subprocess_exec(
        *CLI, "watch", server.url, "--model", "lucy-2.6", "--video", "/nonexistent.mp4",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env_with_key(server.api_key),
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert "video file not found: /nonexistent.mp4" in stderr.decode()


async def test_watch_with_a_wrong_key_reports_the_auth_error(server: rt.EmbeddedServer) -> None:
    proc = await asyncio.create_subprocess_exec(
        *CLI, "watch", server.url, "--model", "lucy-2.6", "--api-key", "wrong-key-42",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    err = stderr.decode()
    assert proc.returncode == 1
    assert "AuthError" in err and "wrong-key-42" not in err


async def test_watch_prices_the_watched_model_from_a_price_table(
    server: rt.EmbeddedServer,
) -> None:
    proc = await asyncio.create_subprocess_exec(
        *CLI, "watch", server.url, "--model", "lucy-2.6", "--seconds", "1.5", "--json",
        "--price", "lucy-2.1=0.5", "--price", "lucy-2.6=0.25",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env_with_key(server.api_key),
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    summary = json.loads(stdout.decode().strip().splitlines()[-1])
    assert summary["billed_seconds"] >= 1
    assert Decimal(summary["cost"]) == Decimal("0.25") * summary["billed_seconds"]
    assert summary["tier"] == "standard"


async def test_watch_at_the_fast_tier_is_billed_twice_the_standard_price(
    server: rt.EmbeddedServer,
) -> None:
    proc = await asyncio.create_subprocess_exec(
        *CLI, "watch", server.url, "--model", "lucy-2.6", "--speed", "fast", "--seconds", "1.5",
        "--json", "--price", "lucy-2.6=0.25",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env_with_key(server.api_key),
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    summary = json.loads(stdout.decode().strip().splitlines()[-1])
    assert summary["tier"] == "fast" and "speed=fast" in summary["url"]
    assert summary["billed_seconds"] >= 1
    assert Decimal(summary["cost"]) == Decimal("0.50") * summary["billed_seconds"]
    assert list(server.tier_by_session.values()) == ["fast"]  # the server saw it too


async def test_watch_rejects_a_price_table_without_the_model(server: rt.EmbeddedServer) -> None:
    proc = await asyncio.create_subprocess_exec(
        *CLI, "watch", server.url, "--model", "lucy-2.6", "--price", "lucy-2.1=0.5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env_with_key(server.api_key),
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert "no price for model 'lucy-2.6' (priced: lucy-2.1)" in stderr.decode()
