"""``check_connectivity`` against the embedded server: a pass, a wrong key, a closed port."""

from __future__ import annotations

import json

import rxrealtime as rt
from rxrealtime.connectivity import check_connectivity, render
from rxrealtime.server.livekit_server import free_port


async def test_a_reachable_server_with_the_right_key_passes_every_step(server) -> None:
    report = await check_connectivity(server.url, api_key=server.api_key, timeout_s=10)
    assert report.ok, render(report)
    assert [s.name for s in report.steps] == ["websocket", "auth", "media"]
    assert all(s.seconds >= 0 for s in report.steps)
    assert not server.sessions  # nothing left behind
    assert json.loads(report.to_json())["ok"] is True


async def test_a_wrong_key_fails_the_auth_step_with_a_hint(server) -> None:
    report = await check_connectivity(server.url, api_key="sk-wrong-key-123456", timeout_s=5)
    assert not report.ok
    assert [(s.name, s.ok) for s in report.steps] == [("websocket", True), ("auth", False)]
    assert "key" in report.steps[-1].hint and "sk-wrong-key" not in render(report)


async def test_a_closed_port_fails_the_websocket_step_with_a_hint() -> None:
    url = f"ws://127.0.0.1:{free_port()}"
    report = await check_connectivity(url, api_key="k" * 8, timeout_s=2)
    assert [(s.name, s.ok) for s in report.steps] == [("websocket", False)]
    assert "is the server running" in report.steps[0].hint
    assert "cannot reach" in report.steps[0].detail


def test_check_connectivity_is_public() -> None:
    assert rt.check_connectivity is check_connectivity
