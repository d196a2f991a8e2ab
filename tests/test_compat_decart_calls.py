"""The facade's requests against the embedded server, signaling only (no LiveKit needed):
acks, rejections and timeouts come back as the vendor's error classes and messages, and a
wrong key fails ``connect`` at once with the vendor's ``WebRTCError``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from conftest_livekit import skip_or_fail

import rxrealtime as rt
from rxrealtime.compat.decart import DecartSDKError, WebRTCError, models
from rxrealtime.compat.decart.realtime import RealtimeClient, RealtimeConnectOptions, SetInput

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def client(server: rt.EmbeddedServer) -> AsyncIterator[RealtimeClient]:
    """A facade client on a signaling-only session (the facade itself always asks for a
    LiveKit room; its requests do not depend on how the video travels)."""
    session = rt.Session(server.url, api_key=server.api_key, transport="none",
                         prompt_ack_timeout_s=0.3)  # fmt: skip
    options = RealtimeConnectOptions(model=models.realtime("lucy-2.5"), on_remote_stream=print)
    client = RealtimeClient(session, options, None)
    await session.connect()
    yield client
    await client.disconnect()


async def test_acknowledged_requests_return_none(client: RealtimeClient) -> None:
    sent: list[rt.protocol.ClientMessage] = []
    client.streams.sent.subscribe(sent.append)
    assert await client.set_prompt("a watercolor cat") is None
    assert await client.set_image(b"\x89PNG fake", prompt="a cat", enhance=False) is None
    assert await client.set(SetInput(prompt="a dog")) is None
    assert client.session.prompt_acks is client.streams.prompt_acks
    assert [type(m).__name__ for m in sent] == ["PromptMessage", "SetImageMessage",
                                                "SetImageMessage"]  # fmt: skip
    image, combined = sent[1], sent[2]
    assert (image.prompt, image.enhance_prompt) == ("a cat", False)  # type: ignore[union-attr]
    assert (combined.image_data, combined.prompt) == (None, "a dog")  # type: ignore[union-attr]


async def test_rejections_and_timeouts_raise_the_vendors_errors(
    client: RealtimeClient, server: rt.EmbeddedServer
) -> None:
    server.faults.fail_acks = True
    for call in (client.set_prompt("a cat"), client.set_image(b"png"),
                 client.set(SetInput(prompt="a dog"))):  # fmt: skip
        with pytest.raises(DecartSDKError, match=r"^rejected by fault injection$") as caught:
            await call
        assert type(caught.value) is DecartSDKError
        assert isinstance(caught.value.cause, rt.RequestRejected)
    server.faults.fail_acks = False
    server.faults.ack_delay_s = 2.0
    with pytest.raises(DecartSDKError, match=r"^Prompt acknowledgment timed out$") as caught:
        await client.set_prompt("slow")
    assert isinstance(caught.value.cause, rt.AckTimeout)
    started = time.monotonic()
    with pytest.raises(DecartSDKError, match=r"^Image send timed out$"):
        await client.set_image(b"png", timeout=0.3)  # the vendor's per-call timeout
    assert time.monotonic() - started < 1.5


async def test_a_wrong_key_fails_connect_at_once_with_webrtc_error(
    server: rt.EmbeddedServer,
) -> None:
    # the facade runs on the LiveKit transport: without LiveKit's SDK (the matrix entries
    # install .[dev] only) connect fails first for that, with a clear ConfigError
    try:
        import livekit.rtc  # noqa: F401
    except ImportError:
        skip_or_fail("livekit.rtc is not installed: pip install 'rxrealtime[livekit]'")
    options = RealtimeConnectOptions(model=models.realtime("lucy-2.5"), on_remote_stream=print)
    started = time.monotonic()
    with pytest.raises(WebRTCError, match="invalid api key") as caught:
        await RealtimeClient.connect(server.url, "wrong-key", None, options)
    assert time.monotonic() - started < 2
    assert isinstance(caught.value.cause, rt.AuthError)
    assert isinstance(caught.value, rt.RealtimeError)  # one except clause for both APIs
