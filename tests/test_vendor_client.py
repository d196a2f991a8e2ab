"""The vendor's own client, ``decart[realtime]==0.2.4``, unchanged, against our LiveKit mode.

The client runs in its own process from a venv made once and kept in
tools/livekit/.vendor-venv/ (git-ignored; ~350 MB, opencv included); the script is
tools/livekit/vendor_client.py and prints JSON lines, asserted on here. The embedded
server runs in this process with its default LiveKit server (started and stopped by it),
so the server's side can be checked too: what it sent, and what it billed.

Without the livekit-server binary (``make livekit``) or PyPI to build the venv from, this
skips; under ``CI=true`` it fails instead.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from conftest_livekit import ROOT, require_livekit, vendor_python

import rxrealtime as rt
from rxrealtime import protocol as p
from rxrealtime.server.video import prompt_tint

SCRIPT = ROOT / "tools" / "livekit" / "vendor_client.py"
PROMPT = "a watercolor cat"  # what the script sets


@pytest.fixture(scope="session")
def vendor() -> Path:
    require_livekit()
    return vendor_python()


async def run_script(python: Path, *args: str, timeout: float = 90) -> list[dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        str(python), str(SCRIPT), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    for line in lines:  # shown with -s, and on failure
        print("vendor client:", json.dumps(line)[:400])
    assert proc.returncode == 0, f"vendor client failed: {lines[-1:]}\n{err.decode()[-3000:]}"
    return lines


@pytest.mark.timeout(900)  # the first run makes the venv: ~20 s, pip's cache warm; minutes cold
async def test_the_vendor_client_streams_prompts_and_views_through_our_livekit_mode(
    vendor: Path,
) -> None:
    sent: dict[str, list[p.ServerMessage]] = defaultdict(list)
    async with rt.serve_embedded(media="livekit", tick_interval_s=0.5) as server:
        server.on_send.append(lambda session, frame: sent[session.id].append(frame))
        lines = await run_script(vendor, server.url, server.api_key, "--bad-key")
        events = {line["event"]: line for line in lines}
        assert server.livekit is not None and server.livekit.process is not None
        await asyncio.sleep(0)  # the sessions close as the client's sockets do
    # a wrong key fails at once: "invalid api key" is not retried
    assert "invalid api key" in events["bad_key"]["error"]
    assert events["bad_key"]["failed_after_s"] < 2

    connected, summary = events["connected"], events["summary"]
    assert summary["remote_track"] == summary["viewer_track"] == "RemoteVideoTrack"
    session_id = connected["session_id"]
    assert events["prompt_acked"]["prompt"] == PROMPT
    assert summary["errors"] == []
    assert summary["frames"] >= 20 and summary["viewer_frames"] >= 5
    # the generated band carries the prompt's tint, as the vendor client decodes it
    tint = prompt_tint(PROMPT)
    for band in (summary["frames_band_rgb"], summary["viewer_frames_band_rgb"]):
        assert all(abs(a - b) < 30 for a, b in zip(band, tint, strict=True)), (band, tint)
    assert summary["states"][:3] == ["connecting", "connected", "generating"]
    assert summary["state_at_end"] == "generating"

    ticks = summary["ticks"]
    assert len(ticks) >= 3 and ticks == list(range(ticks[0], ticks[0] + len(ticks)))
    ours = sent[session_id]
    ours_ticks = [m.seconds for m in ours if isinstance(m, p.GenerationTick)]
    assert ticks == ours_ticks[ours_ticks.index(ticks[0]) :][: len(ticks)]
    assert server.billed_by_session[session_id] == ours_ticks[-1]  # billed = ticks sent
    kinds = [type(m).__name__ for m in ours]
    assert kinds[0] == "LivekitRoomInfo" and "SetImageAck" in kinds[:3]  # passthrough acked
    assert "PromptAck" in kinds and "GenerationStarted" in kinds
