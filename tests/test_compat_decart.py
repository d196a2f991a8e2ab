"""The vendor-compatible facade's pure parts, without a server: models, tokens, the client's
checks, the error classes and their mapping, image inputs, and the event bridge (on/off,
buffering, which errors reach ``error``), driven by emitting on a session's streams."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import rxrealtime as rt
from rxrealtime import protocol as p
from rxrealtime.compat import decart
from rxrealtime.compat.decart import errors, models
from rxrealtime.compat.decart.images import image_bytes
from rxrealtime.compat.decart.models import ModelDefinition, to_rxrealtime
from rxrealtime.compat.decart.realtime import (
    GenerationTickMessage,
    RealtimeClient,
    RealtimeConnectOptions,
    SetInput,
    decode_subscribe_token,
    encode_subscribe_token,
)
from rxrealtime.compat.decart.realtime.bridge import Callbacks, SessionBridge, vendor_token
from rxrealtime.compat.decart.realtime.client import request_error
from rxrealtime.compat.decart.types import ModelState, Prompt

S = rt.ConnectionState

#: decart 0.2.4's error classes (decart/errors.py), by name.
VENDOR_ERRORS = ["DecartSDKError", "InvalidAPIKeyError", "InvalidBaseURLError", "WebRTCError",
                 "InvalidInputError", "ModelNotFoundError", "ProcessingError", "QueueSubmitError",
                 "QueueStatusError", "QueueResultError", "TokenCreateError", "TokenDecodeError",
                 "TokenVerifyError"]  # fmt: skip


# -- models --------------------------------------------------------------------------


def test_realtime_models_come_from_our_catalogue() -> None:
    for name, ours in rt.models.MODELS.items():
        theirs = models.realtime(name)
        assert (theirs.name, theirs.url_path, theirs.fps, theirs.width, theirs.height) == (
            ours.name, ours.url_path, ours.fps, ours.width, ours.height)  # fmt: skip
        assert theirs.supported_speeds == ours.speeds
        assert to_rxrealtime(theirs) is ours  # unchanged: the catalogue's own (alias_of kept)
    assert models.realtime("lucy-restyle-latest").height == 704


def test_an_unknown_model_raises_model_not_found_and_old_names_warn() -> None:
    with pytest.raises(errors.ModelNotFoundError, match=r"^Model lucy-9 not found$") as caught:
        models.realtime("lucy-9")
    assert caught.value.model == "lucy-9"
    with pytest.raises(errors.ModelNotFoundError):
        models.realtime(42)  # type: ignore[arg-type]
    rt.models.reset_warnings()  # a deprecated name warns once per process
    with pytest.warns(DeprecationWarning, match="lucy-restyle-2"):
        assert models.realtime("mirage_v2").name == "lucy-restyle-2"
    with pytest.raises(NotImplementedError, match="realtime API only"):
        models.video("lucy-2.1")


def test_a_custom_definition_becomes_ours_and_is_checked_by_our_rules() -> None:
    custom = ModelDefinition[str](name="mine", url_path="/v1/mine", fps=25, width=640,
                                  height=360, supported_speeds=("fast",))  # fmt: skip
    ours = to_rxrealtime(custom)
    assert (ours.name, ours.url_path, ours.fps, ours.speeds) == ("mine", "/v1/mine", 25, ("fast",))
    bad = ModelDefinition[str](name="x", url_path="no-slash", fps=1, width=1, height=1)
    with pytest.raises(rt.ConfigError, match="url_path"):
        to_rxrealtime(bad)
    with pytest.raises(rt.ConfigError, match=r"models\.realtime"):
        to_rxrealtime("lucy-2.5")


# -- tokens --------------------------------------------------------------------------


def test_subscribe_tokens_are_spelled_as_the_vendor_spells_them() -> None:
    token = encode_subscribe_token("room-1")
    assert base64.urlsafe_b64decode(token) == json.dumps({"room_name": "room-1"}).encode()
    assert decode_subscribe_token(token).room_name == "room-1"
    ours = p.make_room_token("room-1")  # compact JSON: decodes too
    assert ours != token and decode_subscribe_token(ours.rstrip("=")).room_name == "room-1"
    info = rt.SessionInfo(sid="s", ip="", port=0, subscribe_token=ours)
    assert vendor_token(info) == token
    peer = p.make_subscribe_token("s", "1.2.3.4", 9)
    assert vendor_token(rt.SessionInfo(sid="s", ip="1.2.3.4", port=9, subscribe_token=peer)) == peer
    bad = [ "", "%%%", base64.urlsafe_b64encode(b"[1]").decode(),
            base64.urlsafe_b64encode(b'{"room_name": ""}').decode()]  # fmt: skip
    for token in bad:
        with pytest.raises(ValueError, match=r"^Invalid subscribe token$"):
            decode_subscribe_token(token)


# -- DecartClient ------------------------------------------------------------------


def test_decart_client_checks_key_and_urls_as_the_vendor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DECART_API_KEY", raising=False)
    with pytest.raises(errors.InvalidAPIKeyError, match="DECART_API_KEY"):
        decart.DecartClient()
    monkeypatch.setenv("DECART_API_KEY", "  env-key-123  ")
    client = decart.DecartClient()
    assert client.api_key == "env-key-123" and client.realtime_base_url == "wss://api.decart.ai"
    assert "env-key" not in repr(client)
    with pytest.raises(errors.InvalidBaseURLError, match=r"^Invalid base URL: ftp://x$"):
        decart.DecartClient(base_url="ftp://x")
    with pytest.raises(errors.InvalidBaseURLError, match=r"api\.example"):
        decart.DecartClient(realtime_base_url="api.example")
    local = decart.DecartClient(api_key="k", realtime_base_url="ws://127.0.0.1:8765")
    assert local.realtime_base_url == "ws://127.0.0.1:8765" and local.api_key == "k"
    with pytest.raises(NotImplementedError, match="realtime API only"):
        local.queue  # noqa: B018


# -- errors --------------------------------------------------------------------------


def test_the_vendor_error_classes_are_ours_too_and_redact_secrets() -> None:
    assert sorted(errors.__all__) == sorted(VENDOR_ERRORS)
    for name in VENDOR_ERRORS:
        cls = getattr(decart, name)
        assert cls is getattr(errors, name) and issubclass(cls, errors.DecartSDKError)
        assert issubclass(cls, rt.RealtimeError)
    error = errors.WebRTCError("boom", cause=rt.AuthError("invalid api key"))
    assert (str(error), repr(error)) == ("boom", "WebRTCError('boom')")
    assert isinstance(error.cause, rt.AuthError) and error.data == {}
    scope = rt.exceptions.SecretScope("sk-live-abcdefgh123")
    try:
        leaked = errors.WebRTCError("ws://h/v1/stream?api_key=sk-live-abcdefgh123 refused")
        assert "sk-live" not in str(leaked) and "sk-live" not in leaked.message
    finally:
        scope.release()


@pytest.mark.parametrize(
    ("error", "kind", "cls", "text"),
    [
        (rt.AckTimeout("no prompt_ack"), "prompt", "DecartSDKError",
         "Prompt acknowledgment timed out"),
        (rt.AckTimeout("no set_image_ack"), "image", "DecartSDKError", "Image send timed out"),
        (rt.RequestRejected("prompt rejected: nsfw"), "prompt", "DecartSDKError", "nsfw"),
        (rt.RequestRejected("prompt rejected: no reason given"), "prompt", "DecartSDKError",
         "Prompt failed"),
        (rt.RequestRejected("image rejected: no reason given"), "image", "DecartSDKError",
         "Failed to set image"),
        (rt.ConfigError("prompt is 1001 characters"), "prompt", "InvalidInputError",
         "prompt is 1001 characters"),
        (rt.NotConnected("the session is disconnected"), "prompt", "DecartSDKError",
         "the session is disconnected"),
    ],
)  # fmt: skip
def test_a_failed_request_is_raised_as_the_vendor_raises_it(
    error: rt.RealtimeError, kind: str, cls: str, text: str
) -> None:
    mapped = request_error(error, kind)
    assert (type(mapped).__name__, str(mapped), mapped.cause) == (cls, text, error)


# -- image inputs ----------------------------------------------------------------------


async def test_image_inputs_are_read_locally_and_urls_are_refused(tmp_path: Path) -> None:
    png = b"\x89PNG fake"
    path = tmp_path / "ref.png"
    path.write_bytes(png)
    b64 = base64.b64encode(png).decode()
    for image in (png, bytearray(png), path, str(path), f"data:image/png;base64,{b64}", b64,
                  io.BytesIO(png), io.StringIO(png.decode("latin-1"))):  # fmt: skip
        got = await image_bytes(image)
        assert got == png or got == png.decode("latin-1").encode(), image
    refused = {"https://example.com/a.png": "does not fetch image URLs",
               "ftp://host/a.png": "Unsupported image URL scheme: 'ftp'",
               tmp_path / "missing.png": "File not found", "not base64!": "not valid base64",
               "*" * 5000: "not valid base64", 3.5: "Invalid file input type"}  # fmt: skip
    for image, message in refused.items():
        with pytest.raises(errors.InvalidInputError, match=message):
            await image_bytes(image)


# -- the client's checks (no I/O) --------------------------------------------------------


def options(**changes: Any) -> RealtimeConnectOptions:
    base = RealtimeConnectOptions(model=models.realtime("lucy-2.5"), on_remote_stream=print)
    for key, value in changes.items():
        setattr(base, key, value)
    return base


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"model": "lucy-2.5"}, "options.model"), ({"on_remote_stream": None}, "on_remote_stream"),
     ({"resolution": "4k"}, "resolution"), ({"preferred_video_codec": "av1"}, "codec"),
     ({"initial_state": {"prompt": "x"}}, "initial_state")],
)  # fmt: skip
async def test_bad_options_raise_invalid_input_before_any_io(
    changes: dict[str, Any], message: str
) -> None:
    started = time.monotonic()
    with pytest.raises(errors.InvalidInputError, match=message):
        await RealtimeClient.connect("ws://127.0.0.1:9", "k", None, options(**changes))
    assert time.monotonic() - started < 0.5


async def test_a_refused_argument_fails_connect_with_webrtc_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RXREALTIME_API_KEY", "never-read-here")  # the vendor reads no env
    for key in ("", None):
        with pytest.raises(errors.WebRTCError, match="api key is empty") as caught:
            await RealtimeClient.connect("ws://127.0.0.1:9", key, None, options())  # type: ignore[arg-type]
        assert isinstance(caught.value.cause, rt.ConfigError)
    with pytest.raises(ValueError, match=r"^Invalid subscribe token$"):
        await RealtimeClient.subscribe("ws://127.0.0.1:9", "k", decart.SubscribeOptions(
            token="nope", on_remote_stream=print))  # fmt: skip


async def test_requests_are_checked_as_the_vendor_checks_them(tmp_path: Path) -> None:
    session = rt.Session("ws://127.0.0.1:9", api_key="k", transport="livekit")
    client = RealtimeClient(session, options(), None)
    with pytest.raises(errors.InvalidInputError, match=r"^Prompt cannot be empty$"):
        await client.set_prompt("  ")
    with pytest.raises(errors.InvalidInputError, match=r"^At least one of 'prompt' or 'image'"):
        await client.set(SetInput())
    with pytest.raises(errors.InvalidInputError, match=r"^Prompt cannot be empty$"):
        await client.set(SetInput(prompt=" "))
    with pytest.raises(errors.InvalidInputError, match="does not fetch"):
        await client.set_image("http://169.254.169.254/latest/meta-data")
    with pytest.raises(errors.DecartSDKError, match="connect") as caught:
        await client.set_prompt("a cat")  # not connected: nothing was sent
    assert isinstance(caught.value.cause, rt.NotConnected)
    with pytest.warns(DeprecationWarning, match="enrich"), pytest.raises(errors.DecartSDKError):
        await client.set_prompt("a cat", enrich=False)
    assert client.get_connection_state() == "disconnected" and not client.is_connected()
    assert client.session is session and client.streams is session
    await client.disconnect()


def test_vendor_input_types_validate_as_the_vendors() -> None:
    with pytest.raises(ValueError, match="at least 1 character"):
        Prompt(text="")
    state = ModelState(prompt=Prompt(text="a cat"), image=b"png")
    assert state.prompt is not None and state.prompt.enhance is True
    assert GenerationTickMessage(seconds=3).type == "generation_tick"


# -- the bridge: events, buffering, errors --------------------------------------------


class Events:
    """A session, a bridge on it, and what each callback got."""

    def __init__(self) -> None:
        self.session = rt.Session("ws://127.0.0.1:9", api_key="k", transport="livekit")
        self.callbacks = Callbacks(("connection_change", "error", "generation_tick"),
                                   self.session)  # fmt: skip
        self.tracks: list[Any] = []
        self.bridge = SessionBridge(self.session, self.callbacks, self.tracks.append)
        self.got: list[tuple[str, Any]] = []
        for event in ("connection_change", "error", "generation_tick"):
            self.callbacks.on(event, lambda v, e=event: self.got.append((e, v)))

    def states(self, *states: rt.ConnectionState) -> None:
        for state in states:
            self.session.connection_changes.emit(state)


async def test_events_during_connect_are_buffered_until_the_next_iteration() -> None:
    ev = Events()
    ev.states(S.CONNECTING, S.CONNECTED)
    ev.session.generation_ticks.emit(p.GenerationTick(seconds=1))
    ev.session.remote_tracks.emit("track-1")
    ev.session.errors.emit(rt.ServerError("overloaded"))
    assert ev.got == [] and ev.tracks == ["track-1"]  # the track is handed over at once
    ev.callbacks.flush()
    assert ev.got == []  # not yet: handlers registered right after connect() still see all
    await asyncio.sleep(0)
    assert [e for e, _ in ev.got] == ["connection_change", "connection_change",
                                      "generation_tick", "error"]  # fmt: skip
    assert [v for e, v in ev.got if e == "connection_change"] == ["connecting", "connected"]
    tick = ev.got[2][1]
    assert isinstance(tick, GenerationTickMessage) and tick.seconds == 1
    error = ev.got[3][1]
    assert type(error) is errors.WebRTCError and str(error) == "overloaded"
    assert isinstance(error.cause, rt.ServerError)
    ev.states(S.GENERATING)  # after the flush: at once
    assert ev.got[-1] == ("connection_change", "generating")


async def test_only_the_errors_the_vendor_reports_reach_error() -> None:
    ev = Events()
    ev.callbacks.flush()
    await asyncio.sleep(0)
    ev.states(S.CONNECTING, S.CONNECTED, S.GENERATING)
    for quiet in (rt.ProtocolError("bad frame"), rt.AckTimeout("late"),
                  rt.RequestRejected("prompt rejected: x"), rt.SessionClosed("bye")):  # fmt: skip
        ev.session.errors.emit(quiet)
    ev.session.errors.emit(rt.ConnectionLost("room gone"))  # the session reconnects: quiet
    ev.states(S.RECONNECTING)
    ev.session.errors.emit(rt.ConnectionLost("attempt 1 failed"))  # while reconnecting
    ev.states(S.CONNECTED, S.GENERATING)
    ev.session.errors.emit(rt.ConnectionLost("room gone again"))
    ev.states(S.DISCONNECTED)  # ... and this time the session ends
    reported = [str(v) for e, v in ev.got if e == "error"]
    assert reported == ["attempt 1 failed", "room gone again"]
    states = [v for e, v in ev.got if e == "connection_change"]
    assert states == ["connecting", "connected", "generating", "reconnecting", "connected",
                      "generating", "disconnected"]  # fmt: skip


async def test_on_off_a_raising_callback_and_the_reconnect_hook(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ev = Events()
    seen: list[Any] = []
    reconnected: list[bool] = []
    ev.bridge.on_reconnected = lambda: reconnected.append(True)

    def boom(state: str) -> None:
        raise RuntimeError("handler bug")

    ev.callbacks.on("connection_change", boom)
    ev.callbacks.on("connection_change", seen.append)
    ev.callbacks.on("no_such_event", seen.append)  # ignored, as the vendor's
    ev.callbacks.off("error", seen.append)  # never registered: fine
    ev.callbacks.flush()
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, "rxrealtime.compat.decart"):
        ev.states(S.CONNECTING)
    assert seen == ["connecting"] and "handler bug" in caplog.text
    ev.callbacks.off("connection_change", seen.append)
    ev.states(S.CONNECTED, S.RECONNECTING, S.GENERATING)
    assert seen == ["connecting"] and reconnected == [True]


async def test_a_raising_callback_is_a_subscriber_error_on_the_session() -> None:
    ev = Events()
    errors_seen: list[rt.RealtimeError] = []
    ev.session.errors.subscribe(errors_seen.append)
    ev.callbacks.on("generation_tick", lambda m: 1 / 0)
    ev.callbacks.flush()
    await asyncio.sleep(0)
    ev.session.generation_ticks.emit(p.GenerationTick(seconds=2))
    assert [type(e).__name__ for e in errors_seen] == ["SubscriberError"]
    assert ("generation_tick", GenerationTickMessage(seconds=2)) in ev.got  # others still called


def test_session_started_names_the_session_the_vendor_way() -> None:
    ev = Events()
    token = p.make_room_token("room-9")
    ev.session.session_started.emit(rt.SessionInfo(sid="sid-9", ip="", port=0,
                                                   subscribe_token=token))  # fmt: skip
    assert ev.bridge.session_id == "sid-9"
    assert ev.bridge.subscribe_token == encode_subscribe_token("room-9")


# -- what importing costs ----------------------------------------------------------------

HEAVY = ("aiortc", "aioice", "av", "numpy", "aiohttp", "livekit")


def loaded_after(code: str) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                         text=True).stdout  # fmt: skip
    return set(json.loads(out.splitlines()[-1]))


def test_import_rxrealtime_never_loads_the_facade() -> None:
    loaded = loaded_after("import rxrealtime as rt\nrt.Session\nrt.models")
    assert not any(m.startswith("rxrealtime.compat") for m in loaded)


def test_the_facade_loads_no_media_stack_until_a_client_connects() -> None:
    code = ("import rxrealtime.compat.decart as d\n"
            "from rxrealtime.compat.decart.realtime import RealtimeConnectOptions, RealtimeClient\n"
            "RealtimeConnectOptions(model=d.models.realtime('lucy-2.5'), on_remote_stream=print)\n"
            "d.DecartClient(api_key='k')\nd.RealtimeClient\nd.REALTIME_AVAILABLE")  # fmt: skip
    loaded = loaded_after(code)
    assert "rxrealtime.compat.decart.realtime.client" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY) == []
    bare = loaded_after("import rxrealtime.compat.decart")
    assert "rxrealtime.session" not in bare and "reactivex" not in bare


def test_the_example_says_what_is_missing_without_livekit(tmp_path: Path) -> None:
    poison = tmp_path / "livekit"
    poison.mkdir()
    (poison / "__init__.py").write_text("raise ImportError('no livekit here')\n")
    example = Path(__file__).resolve().parent.parent / "examples" / "decart_realtime.py"
    out = subprocess.run([sys.executable, str(example)], capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path), "PATH": ""}, timeout=30,
                         check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout == (
        "skipped: LiveKit's SDK is not installed: pip install 'rxrealtime[livekit]'\n"
    )
