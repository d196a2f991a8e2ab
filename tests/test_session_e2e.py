"""End to end: our Session against the real embedded server on loopback (aiohttp + aiortc)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import Recorder, wait_until

import rxrealtime as rt
from rxrealtime import protocol as p
from rxrealtime.server import prompt_tint

S = rt.ConnectionState


def band_colour(frame: Any) -> np.ndarray:
    """Mean RGB of the server's prompt band (top sixth of the frame, edges trimmed)."""
    rgb = frame.to_ndarray(format="rgb24")
    band = rgb.shape[0] // 6
    return rgb[2 : band - 2, 4:-4].reshape(-1, 3).mean(axis=0)


def shows_prompt(frame: Any, prompt: str, tolerance: float = 25.0) -> bool:
    return bool(np.abs(band_colour(frame) - np.array(prompt_tint(prompt))).max() < tolerance)


async def test_full_session_ticks_acks_states_and_transformed_frames(make_session) -> None:
    session = make_session()
    rec = Recorder(session)
    async with session.connect(local_track=rt.media.SyntheticTrack(), prompt="anime"):
        await wait_until(lambda: len(rec["generation_ticks"]) >= 2)
        await wait_until(lambda: any(shows_prompt(f, "anime") for f in rec["frames"][-5:]))
        ack = await session.set_prompt("cyberpunk city")
        assert ack == p.PromptAck(prompt="cyberpunk city", success=True, error=None)
        await wait_until(lambda: any(shows_prompt(f, "cyberpunk city") for f in rec["frames"][-5:]))
        assert session.state is S.GENERATING
    assert rec["connection_changes"] == [
        S.DISCONNECTED, S.CONNECTING, S.CONNECTED, S.GENERATING, S.DISCONNECTED,
    ]  # fmt: skip
    assert [a.prompt for a in rec["prompt_acks"]] == ["anime", "cyberpunk city"]
    seconds = [t.seconds for t in rec["generation_ticks"]]
    assert seconds == list(range(1, len(seconds) + 1))  # cumulative, one billed second a tick
    assert len(rec["generation_started"]) == 1
    assert len(rec["remote_tracks"]) == 1
    assert rec["errors"] == []
    # every frame also went through `messages`, in order
    assert [m for m in rec["messages"] if isinstance(m, p.GenerationTick)] == rec[
        "generation_ticks"
    ]


async def test_prompt_tint_differs_from_the_source_pattern(make_session) -> None:
    session = make_session()
    rec = Recorder(session)
    async with session.connect(local_track=rt.media.SyntheticTrack(), prompt="sunset"):
        await wait_until(lambda: len(rec["frames"]) >= 3)
        assert shows_prompt(rec["frames"][-1], "sunset")
        assert not shows_prompt(rec["frames"][-1], "anime")


async def test_session_identity_and_subscribe_token(make_session, server) -> None:
    session = make_session()
    rec = Recorder(session)
    async with session.connect(local_track=rt.media.SyntheticTrack()):
        await wait_until(lambda: session.session_id is not None)
        assert session.session_id in server.sessions
        target = p.parse_subscribe_token(session.subscribe_token or "")
        assert (target.sid, target.ip, target.port) == (
            session.session_id,
            "127.0.0.1",
            server.port,
        )
        assert rec["session_started"][0].subscribe_token == session.subscribe_token


async def test_receive_only_session_gets_generated_video(make_session) -> None:
    session = make_session()
    rec = Recorder(session)
    async with session.connect(prompt="ocean"):
        await wait_until(lambda: len(rec["frames"]) >= 3 and len(rec["generation_ticks"]) >= 1)
        assert shows_prompt(rec["frames"][-1], "ocean")


async def test_avatar_model_uses_its_own_path(make_session, tmp_path: Path) -> None:
    image = tmp_path / "face.png"
    image.write_bytes(b"\x89PNG fake image bytes")
    rt.models.reset_warnings()  # the warning is once per process
    with pytest.warns(DeprecationWarning, match="'avatar-live' is no longer in the service"):
        session = make_session(model="avatar-live")
    assert "/v1/avatar-live/stream?" in session.url  # still its own endpoint
    rec = Recorder(session)
    async with session.connect(image=image, prompt="smile"):
        await wait_until(lambda: len(rec["generation_ticks"]) >= 1)
    assert rec["image_acks"] == [p.SetImageAck(success=True, error=None)]


async def test_set_image_accepts_bytes_data_uri_and_none(make_session) -> None:
    session = make_session()
    async with session.connect(local_track=rt.media.SyntheticTrack()):
        assert (await session.set_image(b"raw bytes")).success
        uri = "data:image/png;base64," + base64.b64encode(b"png").decode()
        assert (await session.set_image(uri, prompt="with prompt")).success
        assert (await session.set_image(None)).success
        with pytest.raises(rt.ConfigError):
            await session.set_image("data:image/png;base64,@@@")
        with pytest.raises(rt.ConfigError):
            await session.set_image("/no/such/file.png")


async def test_wrong_api_key_raises_auth_error_and_publishes_it(make_session) -> None:
    session = make_session(api_key="wrong-key-123")
    rec = Recorder(session)
    with pytest.raises(rt.AuthError, match="invalid api key"):
        await session.connect(local_track=rt.media.SyntheticTrack())
    assert [type(e) for e in rec["errors"]] == [rt.AuthError]
    assert rec["errors"][0].permanent
    assert session.state is S.DISCONNECTED
    assert "wrong-key-123" not in repr(rec["errors"][0]) + str(rec["errors"][0])
    await session.disconnect()


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ('{"type": "generation_tick", "seconds": ', "truncated"),
        ('{"type": "teleport", "where": "mars"}', "Invalid value 'teleport'"),
        ('{"type": "generation_tick", "seconds": "many"}', "Expected `int`"),
        (b"\x00\x01binary", "binary frame"),
    ],
)
async def test_bad_server_frame_is_a_protocol_error_and_ticks_keep_flowing(
    make_session, server, frame: str | bytes, reason: str
) -> None:
    session = make_session()
    rec = Recorder(session)
    async with session.connect(local_track=rt.media.SyntheticTrack()):
        await wait_until(lambda: len(rec["generation_ticks"]) >= 1)
        await server.send_raw(frame)
        await wait_until(lambda: len(rec["errors"]) >= 1)
        ticks_at_error = len(rec["generation_ticks"])
        await wait_until(lambda: len(rec["generation_ticks"]) >= ticks_at_error + 2)
        assert session.state is S.GENERATING
    assert [type(e) for e in rec["errors"]] == [rt.ProtocolError]
    assert reason in rec["errors"][0].reason


async def test_server_fault_malformed_ticks_do_not_lose_good_ticks() -> None:
    async with rt.serve_embedded(
        tick_interval_s=0.1, faults=rt.Faults(bad_frames=("malformed",), bad_frames_every_n_ticks=2)
    ) as server:
        session = rt.Session(server.url, api_key=server.api_key)
        rec = Recorder(session)
        async with session.connect(local_track=rt.media.SyntheticTrack()):
            await wait_until(lambda: len(rec["generation_ticks"]) >= 6)
        seconds = [t.seconds for t in rec["generation_ticks"]]
        assert seconds == list(range(1, len(seconds) + 1))
        assert len(rec["errors"]) >= 2
        assert all(isinstance(e, rt.ProtocolError) for e in rec["errors"])


async def test_raising_subscriber_does_not_stop_the_others(make_session) -> None:
    session = make_session()
    rec = Recorder(session)
    calls = []

    def broken(tick: p.GenerationTick) -> None:
        calls.append(tick)
        raise ValueError("dashboard bug")

    session.generation_ticks.subscribe(broken)
    later: list[p.GenerationTick] = []
    session.generation_ticks.subscribe(later.append)
    async with session.connect(local_track=rt.media.SyntheticTrack()):
        await wait_until(lambda: len(later) >= 3)
    assert len(calls) == len(later) >= 3  # the broken one kept receiving too
    sub_errors = [e for e in rec["errors"] if isinstance(e, rt.SubscriberError)]
    assert len(sub_errors) == len(calls)
    assert sub_errors[0].stream == "generation_ticks"
    assert isinstance(sub_errors[0].error, ValueError)


async def test_streams_complete_on_disconnect(make_session) -> None:
    session = make_session()
    rec = Recorder(session)
    await session.connect(local_track=rt.media.SyntheticTrack())
    await wait_until(lambda: len(rec["generation_ticks"]) >= 1)
    await session.disconnect()
    assert rec.completed == set(rec.values)
    assert session.closed and session.state is S.DISCONNECTED
    with pytest.raises(rt.SessionClosed):
        await session.connect()
    with pytest.raises(rt.SessionClosed):
        await session.set_prompt("late")
    await session.disconnect()  # idempotent


async def test_set_prompt_before_connect_is_a_clear_error(make_session) -> None:
    session = make_session()
    with pytest.raises(rt.NotConnected, match="connect"):
        await session.set_prompt("too early")
    await session.disconnect()


async def test_rejected_prompt_raises_request_rejected(make_session) -> None:
    session = make_session(max_prompt_chars=5000)  # let a too-long prompt reach the server
    rec = Recorder(session)
    async with session.connect(local_track=rt.media.SyntheticTrack()):
        with pytest.raises(rt.RequestRejected, match="prompt rejected"):
            await session.set_prompt("x" * 1500)
        assert (await session.set_prompt("fine")).success
    assert [type(e) for e in rec["errors"]] == [rt.RequestRejected]
    assert [a.success for a in rec["prompt_acks"]] == [False, True]


async def test_credits_running_out_ends_the_session() -> None:
    async with rt.serve_embedded(tick_interval_s=0.1, credits_s=3) as server:
        session = rt.Session(server.url, api_key=server.api_key)
        rec = Recorder(session)
        await session.connect(local_track=rt.media.SyntheticTrack())
        await wait_until(lambda: session.state is S.DISCONNECTED)
        assert [t.seconds for t in rec["generation_ticks"]] == [1, 2, 3]
        assert rec["generation_ended"] == [
            p.GenerationEnded(seconds=3, reason="insufficient_credits")
        ]
        assert [str(e) for e in rec["errors"]] == ["insufficient credits"]
        assert S.RECONNECTING not in rec["connection_changes"]
        await session.disconnect()


async def test_connect_to_a_closed_port_raises_connection_lost() -> None:
    async with rt.serve_embedded() as server:
        url = server.url
    no_retry = rt.ReconnectPolicy(max_attempts=0)
    session = rt.Session(url, api_key="k", connect_timeout_s=5, reconnect=no_retry)
    rec = Recorder(session)
    with pytest.raises(rt.ConnectionLost, match="cannot reach"):
        await session.connect()
    assert [type(e) for e in rec["errors"]] == [rt.ConnectionLost]
    await session.disconnect()


async def test_connect_retries_a_closed_port_until_its_timeout() -> None:
    async with rt.serve_embedded() as server:
        url = server.url
    retry = rt.ReconnectPolicy(initial_delay_s=0.05, max_delay_s=0.1, max_attempts=100)
    session = rt.Session(url, api_key="k", connect_timeout_s=0.6, reconnect=retry)
    rec = Recorder(session)
    with pytest.raises(rt.ConnectTimeout):
        await session.connect()
    kinds = [type(e) for e in rec["errors"]]
    assert kinds.count(rt.ConnectionLost) >= 3 and kinds[-1] is rt.ConnectTimeout
    assert rec["connection_changes"][-1] is S.DISCONNECTED
    await session.disconnect()


async def test_async_bridges_on_a_live_session(make_session) -> None:
    session = make_session()
    async with session.connect(local_track=rt.media.SyntheticTrack()):
        first = await session.generation_ticks.next(timeout=5)
        seen = []
        async for tick in session.generation_ticks:
            seen.append(tick.seconds)
            if len(seen) == 2:
                break
    assert seen == [first.seconds + 1, first.seconds + 2]


async def test_a_plain_aiortc_client_following_the_protocol_is_served(server) -> None:
    """Not our Session: raw aiohttp + aiortc, trickling a candidate, with user_agent."""
    import aiohttp
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.sdp import candidate_to_sdp

    from rxrealtime.transport import gather_on_loopback

    url = f"{server.url}/v1/stream?api_key={server.api_key}&model=lucy-2.6&user_agent=other%2F1.0"
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(rt.media.SyntheticTrack())
    received: list[str] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_json({"type": "prompt", "prompt": "forest", "enhance_prompt": True})
        with gather_on_loopback():
            await pc.setLocalDescription(await pc.createOffer())
        await ws.send_json({"type": "offer", "sdp": pc.localDescription.sdp})
        local = pc.sctp or pc.getTransceivers()[0].sender.transport.transport
        for cand in local.iceGatherer.getLocalCandidates():
            await ws.send_json(
                {"type": "ice-candidate",
                 "candidate": {"candidate": "candidate:" + candidate_to_sdp(cand),
                               "sdpMLineIndex": 0, "sdpMid": "0"}}
            )  # fmt: skip
        while received.count("generation_tick") < 2:
            data = (await asyncio.wait_for(ws.receive(), 15)).json()
            received.append(data["type"])
            if data["type"] == "answer":
                await pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "answer"))
    await pc.close()
    assert received[0] == "prompt_ack"
    assert {"answer", "session_id", "generation_started", "generation_tick"} <= set(received)
    assert server.counters.get("protocol_errors", 0) == 0


async def test_ack_latencies_are_published_for_prompts_and_images(make_session) -> None:
    session = make_session()
    latencies: list[rt.AckLatency] = []
    session.ack_latencies.subscribe(latencies.append)
    async with session.connect(local_track=rt.media.SyntheticTrack(), prompt="a"):
        await session.set_image(b"img")
        await session.set_prompt("b")
    assert [lat.kind for lat in latencies] == ["prompt", "image", "prompt"]
    assert all(0 < lat.seconds < 5 for lat in latencies)


def test_protocol_defaults_are_the_production_ones() -> None:
    options = rt.Session("ws://127.0.0.1:9", api_key="k").options
    assert options.reconnect.delays() == [1, 2, 4, 8, 10]
    assert (options.prompt_ack_timeout_s, options.image_ack_timeout_s) == (15, 30)
    assert options.ice_servers == []


async def test_a_hot_stream_cannot_be_awaited_by_mistake(make_session) -> None:
    session = make_session()
    with pytest.raises(TypeError, match="next"):
        await session.generation_ticks
    await session.disconnect()


async def test_queue_positions_are_published(make_session, server) -> None:
    session = make_session()
    rec = Recorder(session)
    async with session.connect(local_track=rt.media.SyntheticTrack()):
        await server.send_raw('{"type": "queue_position", "position": 3, "queue_size": 7}')
        await wait_until(lambda: len(rec["queue_positions"]) == 1)
    assert rec["queue_positions"] == [p.QueuePosition(position=3, queue_size=7)]


async def test_webrtc_stats_are_published_while_observed(make_session) -> None:
    session = make_session(stats_interval_s=0.2)
    reports: list[Any] = []
    stats: list[Any] = []
    session.raw_stats.subscribe(reports.append)  # aiortc's own report, as sampled
    session.stats.subscribe(stats.append)  # typed figures
    async with session.connect(local_track=rt.media.SyntheticTrack()):
        # an interval with media flowing both ways: on a loaded machine (two matrix entries
        # on two cores) one 0.2 s interval once had no frame either way, a stalled loop
        await wait_until(lambda: len(reports) >= 2 and len(stats) >= 3
                         and stats[-1].inbound_fps > 0 and stats[-1].outbound_fps > 0)  # fmt: skip
        last = stats[-1]
        quality = await session.quality.next(timeout=1)  # replayed: the latest verdict
    kinds = {stat.type for stat in reports[-1].values()}
    assert {"inbound-rtp", "outbound-rtp"} <= kinds
    assert isinstance(last, rt.quality.SessionStats)
    assert last.inbound_fps > 0 and last.outbound_fps > 0 and last.frames_received > 0
    assert last.inbound_bitrate_bps and last.packet_loss is not None
    assert quality.level in ("good", "fair", "poor", "critical")


async def test_server_ending_the_session_completes_the_streams() -> None:
    async with rt.serve_embedded(tick_interval_s=0.1, credits_s=2) as server:
        session = rt.Session(server.url, api_key=server.api_key)
        await session.connect(local_track=rt.media.SyntheticTrack())
        ticks = [t.seconds async for t in session.generation_ticks]  # ends by itself
        assert ticks == [1, 2]
        await wait_until(lambda: session.closed)


async def test_ack_timeout_during_connect_is_reported_as_such(server) -> None:
    server.faults.ack_delay_s = 1.0
    no_retry = rt.ReconnectPolicy(max_attempts=0)
    session = rt.Session(server.url, api_key=server.api_key, prompt_ack_timeout_s=0.2,
                         reconnect=no_retry)  # fmt: skip
    rec = Recorder(session)
    with pytest.raises(rt.AckTimeout, match="prompt_ack"):
        await session.connect(prompt="slow")
    assert [type(e) for e in rec["errors"]] == [rt.AckTimeout]
    await session.disconnect()


async def test_disconnect_while_connect_waits_to_retry_leaves_nothing_running(server) -> None:
    server.faults.refuse_first = 1
    slow = rt.ReconnectPolicy(initial_delay_s=1.0, jitter="none")  # the retry is at 1 s
    session = rt.Session(server.url, api_key=server.api_key, reconnect=slow)
    rec = Recorder(session)
    connecting = asyncio.ensure_future(session.connect(local_track=rt.media.SyntheticTrack()))
    await wait_until(lambda: len(rec["errors"]) == 1)  # the refusal; now waiting 1 s
    await session.disconnect()
    with pytest.raises(rt.SessionClosed):
        await connecting
    await asyncio.sleep(1.3)  # past the retry time: no new attempt may happen
    assert server.counters["connections"] == 1
    assert session.closed and session.state is S.DISCONNECTED


async def test_a_cancelled_disconnect_still_finishes(make_session) -> None:
    session = make_session()
    rec = Recorder(session)
    await session.connect(local_track=rt.media.SyntheticTrack())
    first = asyncio.ensure_future(session.disconnect())
    await asyncio.sleep(0)
    first.cancel()
    await session.disconnect()
    assert session.closed and rec.completed == set(rec.values)


async def test_a_subscriber_after_connect_still_sees_the_session_identity(make_session) -> None:
    session = make_session()
    async with session.connect(local_track=rt.media.SyntheticTrack(96, 64, fps=10)):
        late = await session.session_started.next(timeout=5)  # replayed, not awaited anew
        assert late.sid == session.session_id and late.subscribe_token


async def test_connect_phases_are_timed_on_diagnostics(make_session) -> None:
    session = make_session()
    rec = Recorder(session)
    async with session.connect(local_track=rt.media.SyntheticTrack(96, 64, fps=10)):
        await wait_until(lambda: len(rec["diagnostics"]) >= 4)
    phases = [d.phase for d in rec["diagnostics"] if isinstance(d, rt.diagnostics.PhaseTiming)]
    assert phases[:2] == ["websocket", "media"]
    assert {"first_frame", "first_tick"} <= set(phases)
    seconds = [d.seconds for d in rec["diagnostics"]]
    assert all(s >= 0 for s in seconds) and seconds[0] <= seconds[1]


@pytest.mark.parametrize("codec", ["h264", "vp8"])
async def test_the_preferred_codec_is_the_one_negotiated(make_session, codec: str) -> None:
    from rxrealtime.transports.aiortc import AiortcTransport

    session = make_session(preferred_codec=codec)
    async with session.connect(local_track=rt.media.SyntheticTrack(96, 64, fps=10)):
        media = session.media_transport
        assert isinstance(media, AiortcTransport) and media.pc is not None
        answer = media.pc.remoteDescription.sdp
        video = answer[answer.index("m=video") :]
        first_payload = video.split("\r\n")[0].split()[3]
        assert f"a=rtpmap:{first_payload} {codec.upper()}/90000" in video


def test_speed_is_sent_as_a_query_parameter_and_validated() -> None:
    session = rt.Session("ws://127.0.0.1:9", api_key="k" * 8, speed="fast")
    assert "speed=fast" in session.url
    with pytest.raises(rt.ConfigError, match="speed"):
        rt.Session("ws://127.0.0.1:9", api_key="k" * 8, speed="Warp 9!")


async def test_every_frame_the_client_sends_is_on_sent(make_session) -> None:
    session = make_session()
    rec = Recorder(session)
    async with session.connect(local_track=rt.media.SyntheticTrack(96, 64, fps=10), prompt="a"):
        await session.set_prompt("b")
    kinds = [type(m).__name__ for m in rec["sent"]]
    assert kinds[:2] == ["PromptMessage", "Offer"] and kinds[-1] == "PromptMessage"
    assert [m.prompt for m in rec["sent"] if isinstance(m, p.PromptMessage)] == ["a", "b"]
