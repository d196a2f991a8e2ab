"""The protocol layer alone: no server, no loop."""

from __future__ import annotations

import base64
import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rxrealtime as rt
from rxrealtime import protocol as p

CANDIDATE = p.IceCandidate(
    candidate="candidate:1 1 UDP 2122 127.0.0.1 5000 typ host", sdpMLineIndex=0, sdpMid="0"
)

SERVER_FRAMES: list[p.ServerMessage] = [
    p.Answer(sdp="v=0\r\n"),
    p.IceCandidateMessage(candidate=CANDIDATE),
    p.SessionIdMessage(session_id="s1", server_ip="127.0.0.1", server_port=8765),
    p.Ready(),
    p.PromptAck(prompt="anime", success=True, error=None),
    p.PromptAck(prompt="x", success=False, error="too long"),
    p.SetImageAck(success=True, error=None),
    p.GenerationStarted(),
    p.GenerationTick(seconds=42),
    p.GenerationEnded(seconds=7, reason="insufficient_credits"),
    p.QueuePosition(position=2, queue_size=9),
    p.IceRestart(turn_config=p.TurnConfig(username="u", credential="c", server_url="turn:x")),
    p.ErrorMessage(error="boom"),
]

CLIENT_FRAMES: list[p.ClientMessage] = [
    p.Offer(sdp="v=0\r\n"),
    p.IceCandidateMessage(candidate=CANDIDATE),
    p.PromptMessage(prompt="anime", enhance_prompt=False),
    p.SetImageMessage(image_data="aGVsbG8=", prompt="p", enhance_prompt=True),
    p.SetImageMessage(image_data=None),
]


@pytest.mark.parametrize("frame", SERVER_FRAMES, ids=lambda f: type(f).__name__)
def test_every_server_frame_round_trips(frame: p.ServerMessage) -> None:
    assert p.decode(p.encode(frame)) == frame
    assert p.decode(p.encode(frame).decode()) == frame  # str input too


@pytest.mark.parametrize("frame", CLIENT_FRAMES, ids=lambda f: type(f).__name__)
def test_every_client_frame_round_trips(frame: p.ClientMessage) -> None:
    assert p.decode_client_message(p.encode(frame)) == frame


def test_wire_names_match_the_protocol_table() -> None:
    tags = {json.loads(p.encode(f))["type"] for f in SERVER_FRAMES + CLIENT_FRAMES}
    assert tags == {
        "answer", "ice-candidate", "session_id", "ready", "prompt_ack", "set_image_ack",
        "generation_started", "generation_tick", "generation_ended", "queue_position",
        "ice-restart", "error", "offer", "prompt", "set_image",
    }  # fmt: skip


def test_set_image_sends_null_image_but_omits_absent_optionals() -> None:
    assert json.loads(p.encode(p.SetImageMessage(image_data=None))) == {
        "type": "set_image",
        "image_data": None,
    }


def test_prompt_always_carries_enhance_prompt() -> None:
    assert json.loads(p.encode(p.PromptMessage(prompt="a"))) == {
        "type": "prompt",
        "prompt": "a",
        "enhance_prompt": True,
    }


def test_unknown_fields_are_ignored() -> None:
    frame = p.decode(b'{"type": "generation_tick", "seconds": 3, "cost_usd": 0.1, "x": [1]}')
    assert frame == p.GenerationTick(seconds=3)


def test_ack_error_may_be_absent() -> None:
    assert p.decode('{"type":"prompt_ack","prompt":"a","success":true}') == p.PromptAck(
        prompt="a", success=True, error=None
    )


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b'{"type": "generation_tick", "seconds": ', "truncated"),
        (b"[1, 2]", "Expected `object`"),
        (b'{"seconds": 1}', "missing required field `type`"),
        (b'{"type": "teleport"}', "Invalid value 'teleport'"),
        (b'{"type": "generation_tick"}', "missing required field `seconds`"),
        (b'{"type": "generation_tick", "seconds": "3"}', "Expected `int`, got `str`"),
        (b'{"type": 5}', "Expected `str`"),
        (b"\xff\xfe\x00", "malformed"),
        (b"", "truncated"),
    ],
)
def test_bad_frames_raise_protocol_error_with_reason_and_excerpt(frame: bytes, reason: str) -> None:
    with pytest.raises(rt.ProtocolError) as info:
        p.decode(frame)
    assert reason in info.value.reason
    assert info.value.frame is not None


def test_protocol_error_truncates_the_frame_copy() -> None:
    huge = b'{"type": "error", "error": ' + b'"x' * 100_000
    with pytest.raises(rt.ProtocolError) as info:
        p.decode(huge)
    assert info.value.frame is not None and len(info.value.frame) <= 201


def test_protocol_error_is_a_realtime_error() -> None:
    assert issubclass(rt.ProtocolError, rt.RealtimeError)


def test_turn_credential_is_not_in_repr() -> None:
    config = p.TurnConfig(username="u", credential="hunter2", server_url="turn:x")
    assert "hunter2" not in repr(config)
    assert "hunter2" not in repr(p.IceRestart(turn_config=config))


# -- subscribe tokens ----------------------------------------------------------------


def test_subscribe_token_round_trips() -> None:
    token = p.make_subscribe_token("sid-1", "127.0.0.1", 8765)
    assert json.loads(base64.urlsafe_b64decode(token)) == {
        "sid": "sid-1",
        "ip": "127.0.0.1",
        "port": 8765,
    }
    assert p.parse_subscribe_token(token) == p.SubscribeTarget(
        sid="sid-1", ip="127.0.0.1", port=8765
    )


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode()


@pytest.mark.parametrize(
    "token",
    ["", "   ", "not base64 !!", _b64([1]), _b64({"sid": "a", "ip": "b"}),
     _b64({"sid": "a", "ip": "b", "port": "x"}), base64.urlsafe_b64encode(b"{nope").decode(),
     _b64({"sid": "", "ip": "b", "port": 1}), _b64({"sid": "a", "ip": "b", "port": 70000})],
)  # fmt: skip
def test_invalid_tokens_raise_invalid_token(token: str) -> None:
    with pytest.raises(rt.InvalidToken):
        p.parse_subscribe_token(token)


# -- property-based: decode raises ProtocolError and nothing else --------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
tags = st.sampled_from(
    ["answer", "ice-candidate", "session_id", "ready", "prompt_ack", "set_image_ack",
     "generation_started", "generation_tick", "generation_ended", "queue_position",
     "ice-restart", "error", "offer", "prompt", "set_image", "", "Generation_Tick"]
)  # fmt: skip
field_names = st.sampled_from(
    ["sdp", "candidate", "session_id", "server_ip", "server_port", "prompt", "success",
     "error", "seconds", "reason", "position", "queue_size", "turn_config", "image_data"]
)  # fmt: skip
protocol_like = st.builds(
    lambda tag, fields: {"type": tag, **fields},
    tags,
    st.dictionaries(field_names, json_values, max_size=5),
)


def _decodes_or_protocol_error(frame: bytes | str) -> None:
    for decoder in (p.decode, p.decode_client_message):
        try:
            result = decoder(frame)
        except rt.ProtocolError as exc:
            assert exc.reason
        else:
            assert isinstance(result, msgspec.Struct)
            assert p.decode(p.encode(result)) == result if decoder is p.decode else True


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256))
def test_arbitrary_bytes_raise_only_protocol_error(frame: bytes) -> None:
    _decodes_or_protocol_error(frame)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_raises_only_protocol_error(value: object) -> None:
    _decodes_or_protocol_error(json.dumps(value))


@settings(max_examples=500, deadline=None)
@given(protocol_like)
def test_protocol_shaped_objects_decode_or_raise_protocol_error(value: dict[str, object]) -> None:
    _decodes_or_protocol_error(json.dumps(value).encode())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_protocol_error(frame: str) -> None:
    _decodes_or_protocol_error(frame)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_tick_seconds_survive_round_trip_within_the_sane_range(seconds: int) -> None:
    # Billing values are checked at decode: below 0 or above the ceiling is nonsense
    # from a broken server, a ProtocolError, never a tick (so never billed).
    frame = p.encode(p.GenerationTick(seconds=seconds))
    if 0 <= seconds <= p.MAX_BILLED_SECONDS:
        assert p.decode(frame) == p.GenerationTick(seconds=seconds)
    else:
        with pytest.raises(rt.ProtocolError, match="seconds"):
            p.decode(frame)


def test_room_tokens_name_a_livekit_room_and_direct_tokens_still_parse() -> None:
    room = p.make_room_token("room-9f")
    assert p.parse_any_subscribe_token(room) == p.RoomTarget(room_name="room-9f")
    direct = p.make_subscribe_token("sid-1", "127.0.0.1", 8765)
    assert p.parse_any_subscribe_token(direct) == p.SubscribeTarget("sid-1", "127.0.0.1", 8765)
    with pytest.raises(rt.InvalidToken, match="empty room_name"):
        p.parse_any_subscribe_token(p.make_room_token(""))
    with pytest.raises(rt.InvalidToken, match="sid/ip/port"):
        p.parse_any_subscribe_token(base64.urlsafe_b64encode(b'{"room": "x"}').decode())


def test_livekit_room_info_never_shows_its_token() -> None:
    info = p.decode('{"type":"livekit_room_info","livekit_url":"ws://h","token":"SECRET-tok",'
                    '"room_name":"r","session_id":"s"}')  # fmt: skip
    assert "SECRET-tok" not in repr(info) and "SECRET-tok" not in str(info)
