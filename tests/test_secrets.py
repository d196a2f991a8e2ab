"""API keys never appear in logs, reprs, exceptions or URLs shown to users."""

from __future__ import annotations

import gc
import json
import logging
import uuid
from pathlib import Path

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
    assert redact(f"error talking to {KEY.upper()}", KEY) == "error talking to ***"
    assert redact("user_agent=rxrealtime&api_key=x", "x") == "user_agent=rxrealtime&api_key=***"


# -- scoped: a session's secrets live as long as the session ---------------------------


def _scoped_key() -> str:
    """A key no other test registers; sessions other tests dropped are collected first,
    so that the registry's size before and after compares this test alone."""
    gc.collect()
    return "sk-scoped-" + uuid.uuid4().hex


async def test_a_closed_sessions_key_is_released_and_a_shared_key_stays_redacted() -> None:
    from rxrealtime.exceptions import live_secret_count, redact_secrets

    key, before = _scoped_key(), live_secret_count()
    async with rt.serve_embedded(api_key=key, tick_interval_s=0.2) as server:
        first = rt.Session(server.url, api_key=key, model="lucy-2.6", transport="none")
        second = rt.Session(server.url, api_key=key, model="lucy-2.6", transport="none")
        assert live_secret_count() == before + 1  # one secret, held twice
        await first.connect()
        await second.connect()
        await first.disconnect()
        assert first.closed and not second.closed
        assert redact_secrets(f"echo {key.upper()}") == "echo ***"  # the second still uses it
        assert str(rt.ServerError(f"quota for {key}")) == "quota for ***"
        await second.disconnect()
    assert live_secret_count() == before
    assert redact_secrets(f"echo {key}") == f"echo {key}"  # released: the registry forgot it
    assert key not in first.url and key not in repr(second)  # its own texts still hide it


def test_a_session_dropped_without_closing_releases_its_key_when_collected() -> None:
    from rxrealtime.exceptions import live_secret_count

    key = _scoped_key()
    before = live_secret_count()
    session = rt.Session("ws://127.0.0.1:9", api_key=key, transport="none")
    assert live_secret_count() == before + 1
    del session
    gc.collect()
    assert live_secret_count() == before


def test_a_short_key_does_not_garble_the_url_or_the_text() -> None:
    session = rt.Session("ws://127.0.0.1:9", api_key="x", transport="none")
    assert "user_agent=rxrealtime" in session.url and "api_key=***" in session.url
    assert str(rt.ServerError("invalid api key x for rxrealtime")) == (
        "invalid api key *** for rxrealtime"
    )


async def test_a_tape_flushed_after_its_session_closed_still_hides_the_key(
    tmp_path: Path,
) -> None:
    from rxrealtime.exceptions import live_secret_count, redact_secrets

    key, before = _scoped_key(), live_secret_count()
    path = tmp_path / "late.tape.jsonl"
    async with rt.serve_embedded(api_key=key, tick_interval_s=0.2) as server:
        session = rt.Session(server.url, api_key=key, transport="none")
        recorder = rt.tapes.TapeRecorder(session, path, flush_interval_s=60).start()
        rec = Recorder(session)
        await session.connect()
        await server.send_raw(json.dumps({"type": "error", "error": f"quota for {key}"}))
        await wait_until(lambda: bool(rec["errors"]))
        await session.disconnect()  # the tape is flushed after this: the key is released
        await recorder.close()
    data = path.read_bytes()
    assert key.encode() not in data and b"quota for ***" in data
    assert live_secret_count() == before and redact_secrets(key) == key
