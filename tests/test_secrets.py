"""API keys never appear in logs, reprs, exceptions or URLs shown to users."""

from __future__ import annotations

import logging

import pytest
from conftest import Recorder, wait_until

import rxrealtime as rt

KEY = "sk-live-TOPSECRET-4f9a8b7c6d5e"
WRONG = "sk-live-WRONGKEY-1a2b3c4d5e6f"


async def test_no_key_in_any_log_line_repr_or_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, aiohttp, aiortc, aioice
    retry = rt.ReconnectPolicy(initial_delay_s=0.05, max_delay_s=0.1)
    async with rt.serve_embedded(api_key=KEY, tick_interval_s=0.1) as server:
        server.faults.drop_socket_after_s = 0.3
        server.faults.bad_frames = ("malformed", "unknown_type")
        session = rt.Session(server.url, api_key=KEY, reconnect=retry)
        rec = Recorder(session)
        shown: list[str] = [repr(server), repr(server.settings), str(server.settings)]
        async with session.connect(local_track=rt.media.SyntheticTrack(64, 48), prompt="p"):
            await wait_until(lambda: S.RECONNECTING in rec["connection_changes"])
            await wait_until(lambda: session.state is S.GENERATING)
            # a TURN credential in a frame that fails to decode must not reach `errors`
            await server.send_raw(
                '{"type": "ice-restart", "turn_config": {"username": "u", '
                '"credential": "TURN-SECRET-99", "server_url": 5}}'
            )
            await wait_until(lambda: any("ice-restart" in str(e) for e in rec["errors"]))
            viewer = rt.Session.subscribe(server.url, session.subscribe_token or "", api_key=KEY)
            async with viewer.connect():
                await wait_until(lambda: viewer.state is S.GENERATING)
                shown += [repr(viewer), viewer.url]
            shown += [repr(session), session.url, repr(session.options), str(session.options)]
        intruder = rt.Session(
            server.url, api_key=WRONG, reconnect=rt.ReconnectPolicy(max_attempts=0)
        )
        with pytest.raises(rt.AuthError) as info:
            await intruder.connect()
        shown += [str(info.value), repr(info.value), repr(intruder), intruder.url]
        await intruder.disconnect()
    errors = rec["errors"]
    assert {type(e) for e in errors} >= {rt.ConnectionLost, rt.ProtocolError}
    shown += [str(e) for e in errors] + [repr(e) for e in errors]
    shown.append(caplog.text)
    assert len(caplog.records) > 50  # the logs really were captured
    for text in shown:
        assert KEY not in text
        assert WRONG not in text
        assert "TURN-SECRET-99" not in text


S = rt.ConnectionState


def test_server_settings_and_options_hide_keys_in_validation_errors() -> None:
    with pytest.raises(rt.ConfigError) as info:
        rt.EmbeddedServer(api_key=KEY, tick_interval_s=-1)
    assert KEY not in str(info.value)
    with pytest.raises(rt.ConfigError) as info2:
        rt.Session("ws://127.0.0.1:9", api_key=KEY, stats_interval_s="often")
    assert KEY not in str(info2.value)


def test_redaction_helpers() -> None:
    from rxrealtime.transport import redact, redact_url

    url = f"wss://h/v1/stream?model=m&api_key={KEY}&token=abc&x=1"
    assert redact_url(url) == "wss://h/v1/stream?model=m&api_key=***&token=***&x=1"
    assert redact(f"error talking to {KEY}", KEY) == "error talking to ***"
