"""User arguments are checked at the call, before any I/O, with clear errors and no secrets."""

from __future__ import annotations

import logging

import pytest

import rxrealtime as rt

KEY = "sk-live-SECRET-0123456789"


def test_api_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RXREALTIME_API_KEY", KEY)
    session = rt.Session("ws://127.0.0.1:9")
    assert session.options.api_key.get_secret_value() == KEY


def test_missing_api_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RXREALTIME_API_KEY", raising=False)
    with pytest.raises(rt.ConfigError, match="RXREALTIME_API_KEY"):
        rt.Session("ws://127.0.0.1:9")
    with pytest.raises(rt.ConfigError, match="empty"):
        rt.Session("ws://127.0.0.1:9", api_key="   ")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "nope"}, "unknown model 'nope'; known models: lucy-2.1, lucy-2.5, lucy-2.6"),
        ({"resolution": "4k"}, "resolution"),
        ({"connect_timeout_s": -1}, "connect_timeout_s"),
        ({"ice_servers": [{"url": "stun:x"}]}, "ice_servers"),
        ({"no_such_option": 1}, "no_such_option"),
    ],
)
def test_bad_options_raise_config_error_without_the_key(kwargs: dict, match: str) -> None:
    with pytest.raises(rt.ConfigError, match=match) as info:
        rt.Session("ws://127.0.0.1:9", api_key=KEY, **kwargs)
    assert KEY not in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("url", ["ftp://host", "127.0.0.1:8765", "ws://", ""])
def test_bad_url_is_a_config_error(url: str) -> None:
    with pytest.raises(rt.ConfigError, match="invalid service URL"):
        rt.Session(url, api_key=KEY)


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://api.example.com", "wss://api.example.com/v1/stream?"),
        ("http://127.0.0.1:8765/", "ws://127.0.0.1:8765/v1/stream?"),
        ("ws://127.0.0.1:8765", "ws://127.0.0.1:8765/v1/stream?"),
    ],
)
def test_base_url_is_rewritten_and_model_path_appended(base: str, expected: str) -> None:
    session = rt.Session(base, api_key=KEY, model="lucy-2.6", resolution="720p")
    assert session.url.startswith(expected)
    assert "model=lucy-2.6" in session.url and "resolution=720p" in session.url
    assert "user_agent=rxrealtime%2F" in session.url


def test_custom_model_definition() -> None:
    model = rt.ModelDefinition(name="mine", url_path="/v2/gen", fps=10, width=64, height=64)
    assert "/v2/gen?" in rt.Session("ws://h", api_key=KEY, model=model).url
    with pytest.raises(rt.ConfigError, match="invalid model definition"):
        rt.Session("ws://h", api_key=KEY, model={"name": "x", "url_path": "no-slash"})  # type: ignore[arg-type]


def test_key_never_in_repr_url_or_options() -> None:
    session = rt.Session("ws://127.0.0.1:9", api_key=KEY)
    for text in (repr(session), session.url, repr(session.options), str(session.options)):
        assert KEY not in text
    assert "api_key=***" in session.url


@pytest.mark.parametrize("prompt", ["", "   ", "x" * 1001])
def test_bad_prompt_raises_before_any_io(prompt: str) -> None:
    session = rt.Session("ws://127.0.0.1:9", api_key=KEY)
    with pytest.raises(rt.ConfigError, match="prompt"):
        session.connect(prompt=prompt)


def test_bad_images_raise_before_any_io(tmp_path) -> None:
    session = rt.Session("ws://127.0.0.1:9", api_key=KEY, max_image_bytes=10)
    big = tmp_path / "big.png"
    big.write_bytes(b"x" * 11)
    for image, match in [
        (b"", "empty"),
        (b"x" * 11, "limit is 10"),
        (big, "larger than 10"),
        (tmp_path / "missing.png", "not found"),
        ("data:image/png,notbase64", "must be base64"),
        (12, "must be bytes"),
    ]:
        with pytest.raises(rt.ConfigError, match=match):
            session.connect(image=image)  # type: ignore[arg-type]


async def test_connect_failure_logs_and_errors_do_not_leak_the_key(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    no_retry = rt.ReconnectPolicy(max_attempts=0)
    session = rt.Session("ws://127.0.0.1:9", api_key=KEY, connect_timeout_s=5, reconnect=no_retry)
    errors: list[rt.RealtimeError] = []
    session.errors.subscribe(errors.append)
    with pytest.raises(rt.ConnectionLost) as info:
        await session.connect()
    await session.disconnect()
    assert errors
    texts = [str(info.value), repr(info.value), *map(str, errors), caplog.text]
    assert all(KEY not in text for text in texts)
