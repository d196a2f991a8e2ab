"""Faults injected by the embedded server, one test per switch: the typed error shows up
on ``errors``, the session recovers or ends as docs/protocol.md says, and billing is exact."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import Recorder, wait_until

import rxrealtime as rt
from rxrealtime import operators as rto
from rxrealtime import protocol as p
from rxrealtime.transports.aiortc import AiortcTransport

S = rt.ConnectionState
FAST_RETRY = rt.ReconnectPolicy(initial_delay_s=0.05, max_delay_s=0.2)


class Billing:
    """The client's view of billing, per server session (keyed by session id)."""

    def __init__(self, session: rt.Session) -> None:
        self.last: dict[str, int] = {}
        self.order: list[str] = []

        def on_tick(tick: p.GenerationTick) -> None:
            sid = session.session_id or "?"
            if sid not in self.last:
                self.order.append(sid)
            self.last[sid] = tick.seconds

        session.generation_ticks.subscribe(on_tick)

    def lost(self, server: rt.EmbeddedServer) -> int:
        """Ticks the server billed that this client never saw (all sessions ended)."""
        return sum(server.billed_by_session[sid] - seen for sid, seen in self.last.items())

    @property
    def total(self) -> int:
        return sum(self.last.values())


@pytest.fixture
async def fast_server() -> AsyncIterator[rt.EmbeddedServer]:
    async with rt.serve_embedded(tick_interval_s=0.1) as srv:
        yield srv


def new_session(server: rt.EmbeddedServer, **options: Any) -> rt.Session:
    options.setdefault("reconnect", FAST_RETRY)
    return rt.Session(server.url, api_key=server.api_key, **options)


def small_track() -> rt.media.SyntheticTrack:
    return rt.media.SyntheticTrack(width=96, height=64, fps=10)


async def test_dropped_socket_reconnects_with_subscriptions_alive(fast_server) -> None:
    fast_server.faults.drop_socket_after_s = 0.4
    session = new_session(fast_server)
    rec, billing = Recorder(session), Billing(session)
    async with session.connect(local_track=small_track(), prompt="rain"):
        await wait_until(lambda: len(billing.order) == 2 and billing.last[billing.order[1]] >= 3)
        first = billing.order[0]
    await wait_until(lambda: len(fast_server.billed_by_session) == 2)
    assert rec["connection_changes"] == [
        S.DISCONNECTED, S.CONNECTING, S.CONNECTED, S.GENERATING,
        S.RECONNECTING, S.CONNECTED, S.GENERATING, S.DISCONNECTED,
    ]  # fmt: skip
    assert [type(e) for e in rec["errors"]] == [rt.ConnectionLost]
    assert fast_server.counters["socket_drops"] == 1
    assert billing.last[first] == fast_server.billed_by_session[first] >= 3
    assert billing.lost(fast_server) == 0
    # the prompt was restored on the new server session
    assert [a.prompt for a in rec["prompt_acks"]] == ["rain", "rain"]


async def test_permanent_error_during_reconnect_is_never_retried(fast_server) -> None:
    fast_server.faults.drop_socket_after_s = 0.3
    session = new_session(fast_server)
    rec = Recorder(session)
    await session.connect(local_track=small_track())
    await wait_until(lambda: session.state is S.GENERATING)
    fast_server.faults.reject_auth = True  # the key is revoked while we are away
    await wait_until(
        lambda: session.state is S.DISCONNECTED and S.RECONNECTING in rec["connection_changes"]
    )
    await asyncio.sleep(0.5)  # room for a (wrong) further attempt
    assert fast_server.counters["connections"] == 2
    assert [type(e) for e in rec["errors"]] == [rt.ConnectionLost, rt.AuthError]
    await session.disconnect()


async def test_auth_rejection_is_not_retried_on_connect(fast_server) -> None:
    fast_server.faults.reject_auth = True
    session = new_session(fast_server)
    with pytest.raises(rt.AuthError):
        await session.connect()
    assert fast_server.counters["connections"] == 1
    await session.disconnect()


async def test_capacity_refusals_are_retried_until_a_slot_is_free(fast_server) -> None:
    fast_server.faults.refuse_first = 2
    session = new_session(fast_server)
    rec = Recorder(session)
    async with session.connect(local_track=small_track()):
        await wait_until(lambda: len(rec["generation_ticks"]) >= 1)
    assert fast_server.counters["capacity_refusals"] == 2
    assert fast_server.counters["connections"] == 3
    assert [type(e) for e in rec["errors"]] == [rt.ServerError, rt.ServerError]
    assert "capacity" in str(rec["errors"][0]) and not rec["errors"][0].permanent


async def test_disconnect_during_reconnect_cancels_it_at_once(fast_server) -> None:
    fast_server.faults.drop_socket_after_s = 0.2
    slow = rt.ReconnectPolicy(initial_delay_s=30, max_delay_s=30)
    session = new_session(fast_server, reconnect=slow)
    rec = Recorder(session)
    await session.connect(local_track=small_track())
    await wait_until(lambda: session.state is S.RECONNECTING)
    started = time.monotonic()
    await session.disconnect()
    assert time.monotonic() - started < 1.0
    assert session.state is S.DISCONNECTED
    assert rec.completed == set(rec.values)


async def test_connect_has_an_overall_timeout(fast_server) -> None:
    fast_server.faults.stall_answer = True
    session = new_session(fast_server, connect_timeout_s=0.5)
    rec = Recorder(session)
    started = time.monotonic()
    with pytest.raises(rt.ConnectTimeout, match=r"within 0\.5 s"):
        await session.connect(local_track=small_track())
    assert time.monotonic() - started < 2
    assert [type(e) for e in rec["errors"]] == [rt.ConnectTimeout]
    assert session.state is S.DISCONNECTED
    await session.disconnect()


async def test_ice_restart_rebuilds_the_peer_and_offers_again(fast_server) -> None:
    fast_server.faults.ice_restart_after_s = 0.3
    session = new_session(fast_server)
    rec, billing = Recorder(session), Billing(session)
    async with session.connect(local_track=small_track(), prompt="snow"):
        await wait_until(lambda: len(rec["remote_tracks"]) == 2)
        # the new peer connection was built with the TURN server the server named
        media = session.media_transport
        assert isinstance(media, AiortcTransport) and media.pc is not None
        ice = media.pc.getTransceivers()[0].sender.transport.transport
        connection = ice.iceGatherer._connection  # aioice: what ICE really uses
        assert connection.turn_server == ("127.0.0.1", 9)  # from faults.turn_url
        assert (connection.turn_username, connection.turn_password, connection.turn_transport) == (
            "rxrealtime", "turn-secret", "tcp",
        )  # fmt: skip
        frames_after_restart = len(rec["frames"])
        await wait_until(lambda: len(rec["frames"]) >= frames_after_restart + 3)
        assert session.state is S.GENERATING
    assert fast_server.counters["ice_restarts"] == 1
    assert rec["errors"] == []
    assert len(billing.order) == 1  # same server session throughout
    assert len(rec["session_started"]) == 1  # so billed_seconds(resets=...) does not reset
    await wait_until(lambda: len(fast_server.billed_by_session) == 1)
    assert billing.lost(fast_server) == 0


async def test_closed_peer_connection_triggers_a_reconnect(fast_server) -> None:
    fast_server.faults.close_peer_after_s = 0.3
    session = new_session(fast_server)
    rec, billing = Recorder(session), Billing(session)
    async with session.connect(local_track=small_track()):
        await wait_until(lambda: len(billing.order) == 2 and billing.last[billing.order[1]] >= 2)
    await wait_until(lambda: len(fast_server.billed_by_session) == 2)
    assert S.RECONNECTING in rec["connection_changes"]
    assert [type(e) for e in rec["errors"]] == [rt.ConnectionLost]
    assert "peer connection" in str(rec["errors"][0])
    assert billing.lost(fast_server) == 0


async def test_stalled_ticks_resume_with_the_exact_cumulative_total(fast_server) -> None:
    fast_server.faults.stall_ticks_after = 2
    fast_server.faults.stall_ticks_for_s = 0.5
    session = new_session(fast_server)
    rec, billing = Recorder(session), Billing(session)
    stalls: list[rto.Stall] = []
    session.generation_ticks.pipe(
        rto.stall_detector(0.3, states=session.connection_changes, scheduler=session.scheduler)
    ).subscribe(stalls.append)
    async with session.connect(local_track=small_track()):
        await wait_until(lambda: len(rec["generation_ticks"]) >= 4)
        assert session.state is S.GENERATING
    assert len(stalls) == 1  # the operator saw the silence, once
    seconds = [t.seconds for t in rec["generation_ticks"]]
    assert seconds[:2] == [1, 2] and seconds[2] >= 6  # the gap is billed, then reported
    assert rec["errors"] == []
    await wait_until(lambda: len(fast_server.billed_by_session) == 1)
    assert billing.lost(fast_server) == 0


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("malformed", "truncated"),
        ("unknown_type", "Invalid value 'teleport'"),
        ("wrong_type", "Expected `int`"),
        ("binary", "binary frame"),
        ("oversized", "exceeds 65536"),
    ],
)
async def test_bad_frames_are_protocol_errors_and_lose_no_tick(fast_server, kind, reason) -> None:
    fast_server.faults.bad_frames = (kind,)
    fast_server.faults.bad_frames_every_n_ticks = 2
    fast_server.faults.oversized_frame_bytes = 100_000
    session = new_session(fast_server, max_frame_bytes=65536)
    rec, billing = Recorder(session), Billing(session)
    async with session.connect(local_track=small_track()):
        await wait_until(lambda: len(rec["generation_ticks"]) >= 5)
        assert session.state is S.GENERATING
    await wait_until(lambda: len(fast_server.billed_by_session) == 1)
    assert len(rec["errors"]) >= 2
    assert all(isinstance(e, rt.ProtocolError) and reason in e.reason for e in rec["errors"])
    assert all(len(e.frame or "") <= 201 for e in rec["errors"])
    assert billing.lost(fast_server) == 0
    assert [t.seconds for t in rec["generation_ticks"]] == list(
        range(1, len(rec["generation_ticks"]) + 1)
    )


async def test_delayed_ack_times_out_with_a_typed_error(fast_server) -> None:
    session = new_session(fast_server, prompt_ack_timeout_s=0.2, image_ack_timeout_s=0.2)
    rec = Recorder(session)
    async with session.connect(local_track=small_track()):
        fast_server.faults.ack_delay_s = 0.5
        with pytest.raises(rt.AckTimeout, match="prompt_ack"):
            await session.set_prompt("slow")
        with pytest.raises(rt.AckTimeout, match="set_image_ack"):
            await session.set_image(b"img")
        fast_server.faults.ack_delay_s = 0
        await wait_until(lambda: len(rec["prompt_acks"]) == 1)  # the late ack still arrives
        assert (await session.set_prompt("fast")).success
        assert session.state is S.GENERATING
    assert [type(e) for e in rec["errors"]] == [rt.AckTimeout, rt.AckTimeout]


async def test_failed_acks_raise_request_rejected(fast_server) -> None:
    session = new_session(fast_server)
    rec = Recorder(session)
    async with session.connect(local_track=small_track()):
        fast_server.faults.fail_acks = True
        with pytest.raises(rt.RequestRejected, match="fault injection"):
            await session.set_prompt("no")
        with pytest.raises(rt.RequestRejected, match="image rejected"):
            await session.set_image(b"img")
    assert [type(e) for e in rec["errors"]] == [rt.RequestRejected, rt.RequestRejected]


async def test_rejected_initial_prompt_fails_connect_without_retry(fast_server) -> None:
    fast_server.faults.fail_acks = True
    session = new_session(fast_server)
    with pytest.raises(rt.RequestRejected):
        await session.connect(prompt="x")
    assert fast_server.counters["connections"] == 1
    await session.disconnect()


async def test_oversized_client_frame_is_ignored_by_the_server() -> None:
    async with rt.serve_embedded(tick_interval_s=0.1, max_frame_bytes=2048) as server:
        session = new_session(server, max_prompt_chars=5000, prompt_ack_timeout_s=0.3)
        rec = Recorder(session)
        async with session.connect(local_track=small_track()):
            with pytest.raises(rt.AckTimeout):
                await session.set_prompt("y" * 3000)
            ticks = len(rec["generation_ticks"])
            await wait_until(lambda: len(rec["generation_ticks"]) >= ticks + 2)
            assert (await session.set_prompt("short")).success
        assert server.counters["oversized_frames"] == 1


async def test_nothing_is_left_behind_after_disconnect(fast_server) -> None:
    import gc
    import warnings

    from aiortc import RTCPeerConnection

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    tasks_before = asyncio.all_tasks()
    fds_before = open_fds()
    session = new_session(fast_server)
    await session.connect(local_track=small_track(), prompt="leak check")
    await wait_until(lambda: session.state is S.GENERATING)
    assert open_fds() > fds_before
    await session.disconnect()
    await wait_until(lambda: not fast_server.sessions)
    await wait_until(lambda: asyncio.all_tasks() - tasks_before - {asyncio.current_task()} == set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session = None  # drop our reference so gc can collect it
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    live_peers = [
        o for o in gc.get_objects()
        if isinstance(o, RTCPeerConnection) and o.connectionState != "closed"
    ]  # fmt: skip
    assert live_peers == []
    await wait_until(lambda: open_fds() == fds_before)


async def test_view_only_subscriber_sees_the_generated_video_and_ticks(fast_server) -> None:
    from test_session_e2e import shows_prompt

    session = new_session(fast_server)
    main_rec = Recorder(session)
    async with session.connect(local_track=small_track(), prompt="lava"):
        await wait_until(lambda: session.subscribe_token is not None)
        viewer = rt.Session.subscribe(fast_server.url, session.subscribe_token or "",
                                      api_key=fast_server.api_key)  # fmt: skip
        assert isinstance(viewer, rt.Subscriber)
        rec = Recorder(viewer)
        async with viewer.connect():
            await wait_until(lambda: len(rec["generation_ticks"]) >= 2 and len(rec["frames"]) >= 3)
            assert shows_prompt(rec["frames"][-1], "lava")
            await session.set_prompt("glacier")
            await wait_until(lambda: any(shows_prompt(f, "glacier") for f in rec["frames"][-3:]))
            assert viewer.session_id == session.session_id
            with pytest.raises(rt.ConfigError, match="view-only"):
                await viewer.set_prompt("mine")
            assert viewer.state is S.GENERATING
        viewer_ticks = {t.seconds for t in rec["generation_ticks"]}
        assert viewer_ticks <= {t.seconds for t in main_rec["generation_ticks"]}
        assert rec["errors"] == []


async def test_subscriber_with_invalid_token_fails_before_any_network_call(fast_server) -> None:
    with pytest.raises(rt.InvalidToken):
        rt.Session.subscribe(fast_server.url, "%%%not-a-token", api_key=fast_server.api_key)
    assert fast_server.counters.get("connections", 0) == 0


async def test_subscriber_to_unknown_session_gets_a_permanent_error(fast_server) -> None:
    token = p.make_subscribe_token("no-such-session", "127.0.0.1", fast_server.port)
    viewer = rt.Session.subscribe(fast_server.url, token, api_key=fast_server.api_key,
                                  reconnect=FAST_RETRY)  # fmt: skip
    with pytest.raises(rt.AuthError, match="invalid session"):
        await viewer.connect()
    assert fast_server.counters["connections"] == 1
    await viewer.disconnect()
