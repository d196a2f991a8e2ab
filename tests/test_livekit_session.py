"""Our Session over LiveKit against the embedded server's LiveKit mode (a real
livekit-server on loopback): the same streams and billing as over the aiortc peer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from conftest import Recorder, wait_until
from conftest_livekit import require_livekit

import rxrealtime as rt
from rxrealtime import operators as rto
from rxrealtime.transports.livekit import LivekitTransport

S = rt.ConnectionState
FAST = rt.ReconnectPolicy(initial_delay_s=0.05, max_delay_s=0.2)


@pytest.fixture(scope="module")
def livekit_binary() -> str:
    return str(require_livekit())


@pytest.fixture
async def lk_server(livekit_binary: str) -> AsyncIterator[rt.EmbeddedServer]:
    async with rt.serve_embedded(media="livekit", tick_interval_s=0.2) as server:
        yield server


def lk_session(server: rt.EmbeddedServer, **options: object) -> rt.Session:
    options.setdefault("reconnect", FAST)
    return rt.Session(server.url, api_key=server.api_key, transport="livekit", **options)  # type: ignore[arg-type]


async def test_frames_ticks_acks_and_generating_over_a_livekit_room(lk_server) -> None:
    session = lk_session(lk_server)
    rec = Recorder(session)
    async with session.connect(local_track=rt.media.SyntheticTrack(), prompt="lava"):
        assert isinstance(session.media_transport, LivekitTransport)
        await wait_until(lambda: len(rec["frames"]) >= 5 and len(rec["generation_ticks"]) >= 2)
        assert (await session.set_prompt("glacier")).success
        assert (await session.set_image(b"\x89PNG fake")).success
        await wait_until(lambda: session.state is S.GENERATING)
    frame = rec["frames"][-1]
    assert type(frame).__name__ == "VideoFrame" and frame.width >= 16  # av, like aiortc
    assert [p.prompt for p in rec["prompt_acks"]] == ["lava", "glacier"]
    assert rec["errors"] == []
    (started,) = rec["session_started"]
    assert started.port == 0 and rt.protocol.parse_any_subscribe_token(started.subscribe_token)
    assert "livekit_early_room_info=true" in session.url
    kinds = [type(m).__name__ for m in rec["sent"]]
    assert kinds[0] == "PromptMessage" and "LivekitJoin" in kinds and "Offer" not in kinds


async def test_a_room_drop_reconnects_and_billing_stays_continuous(lk_server) -> None:
    lk_server.faults.drop_room_after_s = 0.6
    session = lk_session(lk_server)
    rec = Recorder(session)
    totals: list[int] = []
    session.generation_ticks.pipe(rto.billed_seconds(resets=session.session_started)).subscribe(
        totals.append
    )
    async with session.connect(local_track=rt.media.SyntheticTrack(96, 64, fps=10)):
        await wait_until(lambda: len(rec["session_started"]) == 2, timeout=20)
        await wait_until(lambda: session.state is S.GENERATING, timeout=20)
        second = rec["session_started"][-1].sid
        await wait_until(lambda: len(rec["generation_ticks"]) >= 2)
    assert S.RECONNECTING in rec["connection_changes"]
    assert any("LiveKit room disconnected" in str(e) for e in rec["errors"])
    await wait_until(lambda: len(lk_server.billed_by_session) == 2)
    billed = sum(lk_server.billed_by_session.values())
    assert totals[-1] == billed  # every billed second seen, across the new server session
    assert second in lk_server.billed_by_session


async def test_a_view_only_watcher_joins_the_room_through_watch_stream(lk_server) -> None:
    session = lk_session(lk_server)
    async with session.connect(local_track=rt.media.SyntheticTrack(96, 64, fps=10)):
        token = (await session.session_started.next(timeout=5)).subscribe_token
        viewer = rt.Session.subscribe(lk_server.url, token, api_key=lk_server.api_key)
        rec = Recorder(viewer)
        async with viewer.connect():
            await wait_until(lambda: len(rec["frames"]) >= 3)
            with pytest.raises(rt.ConfigError, match="view-only"):
                await viewer.set_prompt("mine")
        assert rec["errors"] == [] and rec["sent"] == []  # no socket, nothing sent


async def test_a_wrong_key_on_watch_stream_is_an_auth_error(lk_server) -> None:
    token = rt.protocol.make_room_token("no-such-room")
    viewer = rt.Session.subscribe(lk_server.url, token, api_key="sk-wrong-000000")
    with pytest.raises(rt.AuthError, match="unauthorized"):
        await viewer.connect()
    await viewer.disconnect()


async def test_stats_carry_loss_bitrate_and_rtt_from_livekits_own_report(lk_server) -> None:
    """On loopback nothing is lost: a loss of 0 over packets really counted (not ``None``,
    what the transport reported before it read LiveKit's stats), a positive bitrate both
    ways, an RTT off the selected candidate pair; and a sample taken once the room is gone
    gives the frame count alone instead of raising into the session."""
    session = lk_session(lk_server)
    samples: list[rt.quality.SessionStats] = []
    session.stats.subscribe(samples.append)
    async with session.connect(local_track=rt.media.SyntheticTrack(320, 180, fps=15)):
        await wait_until(lambda: len(samples) >= 3, timeout=15)
        transport = session.media_transport
        assert isinstance(transport, LivekitTransport)
        counters, raw = await transport.sample()
        assert raw is not None and any(r.WhichOneof("stats") == "inbound_rtp"
                                       for r in raw["generated"])  # fmt: skip
    last = samples[-1]
    assert last.packet_loss == 0.0 and (last.packets_received or 0) > 0
    assert (last.inbound_bitrate_bps or 0) > 0 and (last.outbound_bitrate_bps or 0) > 0
    assert last.rtt_s is not None and 0 <= last.rtt_s < 0.1
    assert last.candidate_pair == "host" and last.inbound_fps > 5
    assert counters.packets_received and counters.packets_received >= last.packets_received
    after, raw_after = await transport.sample()  # closed: the room is disconnected
    assert raw_after is None and after.packets_received is None
    assert after.frames_sent >= counters.frames_sent > 0
