"""The reference server's rules without a socket: the billing clock's decisions, the
early-candidate buffer, and what a bad offer does to a peer."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from aiortc import RTCPeerConnection

from rxrealtime import protocol as p
from rxrealtime.server.clock import (
    TickLedger,
    bad_frames_due,
    credits_exhausted,
    run_billing_clock,
)
from rxrealtime.server.peer import Attach, ServerPeer
from rxrealtime.server.settings import Faults, ServerSettings
from rxrealtime.transports.ice import CandidateBuffer

# -- the ledger: drops, stalls, billing ----------------------------------------------


def test_a_tick_bills_only_once_delivered() -> None:
    ledger, faults = TickLedger(), Faults()
    first = ledger.step(10.0, faults, seconds_per_tick=3)
    assert (first.action, first.seconds) == ("send", 3)
    again = ledger.step(11.0, faults, seconds_per_tick=3)  # first one never delivered
    assert (again.action, again.seconds, ledger.billed, ledger.ticks) == ("send", 3, 0, 0)
    ledger.delivered(again.seconds)
    assert (ledger.billed, ledger.ticks) == (3, 1)
    assert ledger.step(12.0, faults, seconds_per_tick=3).seconds == 6


def test_a_drop_happens_on_the_first_boundary_at_or_after_it_is_due() -> None:
    ledger, faults = TickLedger(drop_due=5.0), Faults()
    assert ledger.step(4.999, faults, 1).action == "send"
    assert ledger.step(5.0, faults, 1).action == "drop"
    assert TickLedger(drop_due=0.0).step(0.5, faults, 1).action == "drop"  # drop(): next tick
    assert TickLedger().step(1e9, faults, 1).action == "send"


def test_a_due_drop_wins_over_a_stall() -> None:
    faults = Faults(stall_ticks_after=0, stall_ticks_for_s=10)
    ledger = TickLedger(drop_due=1.0)
    assert ledger.step(2.0, faults, 1).action == "drop"
    assert ledger.stalled_until is None and ledger.billed == 0


def test_a_stall_bills_silently_once_then_ticks_resume_with_the_stalled_seconds() -> None:
    faults = Faults(stall_ticks_after=2, stall_ticks_for_s=1.0)
    ledger = TickLedger(billed=2, ticks=2)
    began = ledger.step(100.0, faults, 1)
    assert (began.action, began.stall_began, ledger.billed) == ("stall", True, 3)
    during = ledger.step(100.5, faults, 1)
    assert (during.action, during.stall_began, ledger.billed) == ("stall", False, 4)
    after = ledger.step(101.0, faults, 1)
    assert (after.action, after.seconds, after.stall_began) == ("send", 5, False)
    ledger.delivered(after.seconds)
    # one stall a session: back at the count later, the window has passed
    ledger.ticks = 2
    assert ledger.step(200.0, faults, 1).action == "send"


def test_a_stall_waits_for_its_tick_count_and_a_zero_stall_only_counts() -> None:
    faults = Faults(stall_ticks_after=2, stall_ticks_for_s=0)
    assert TickLedger(ticks=1).step(0.0, faults, 1).stall_began is False
    step = TickLedger(ticks=2).step(50.0, faults, 1)
    assert (step.action, step.stall_began) == ("send", True)


def test_bad_frames_follow_every_nth_delivered_tick() -> None:
    faults = Faults(bad_frames=("malformed", "binary"), bad_frames_every_n_ticks=3)
    assert [bool(bad_frames_due(n, faults)) for n in range(1, 7)] == [0, 0, 1, 0, 0, 1]
    assert bad_frames_due(3, faults) == ("malformed", "binary")
    assert bad_frames_due(3, Faults()) == ()


def test_credits_run_out_at_the_limit_not_before() -> None:
    assert not credits_exhausted(10**9, None)
    assert not credits_exhausted(4, 5)
    assert credits_exhausted(5, 5)
    assert credits_exhausted(0, 0)


# -- the clock loop, against a fake session -------------------------------------------


class FakeTarget:
    def __init__(self, deliver: int = 10**9) -> None:
        self.closed = False
        self.deliver = deliver
        self.sent: list[p.ServerMessage] = []
        self.raw: list[str | bytes] = []
        self.ended: tuple[str, str | None] | None = None
        self.dropped = False

    async def broadcast(self, message: p.ServerMessage) -> bool:
        if self.deliver == 0:
            return False
        self.deliver -= 1
        self.sent.append(message)
        return True

    async def send_tick(self, seconds: int) -> bool:
        return await self.broadcast(p.GenerationTick(seconds=seconds))

    async def send_raw(self, frame: str | bytes) -> None:
        self.raw.append(frame)

    def drop_socket(self) -> None:
        self.dropped = True

    async def end(self, reason: str, error: str | None = None) -> None:
        self.ended = (reason, error)
        self.closed = True


def run_clock(target: FakeTarget, ledger: TickLedger, **settings: Any) -> dict[str, int]:
    counters: dict[str, int] = {}

    def count(name: str) -> None:
        counters[name] = counters.get(name, 0) + 1

    config = ServerSettings(tick_interval_s=0.001, **settings)
    asyncio.run(asyncio.wait_for(run_billing_clock(target, ledger, config, count), 10))
    return counters


def test_the_clock_stops_billing_when_the_client_is_gone() -> None:
    target, ledger = FakeTarget(deliver=3), TickLedger()
    counters = run_clock(target, ledger, seconds_per_tick=2)
    assert [cast(p.GenerationTick, m).seconds for m in target.sent] == [2, 4, 6]
    assert (ledger.billed, ledger.ticks, counters) == (6, 3, {"ticks": 3})


def test_the_clock_ends_the_session_when_credits_run_out() -> None:
    target, ledger = FakeTarget(), TickLedger()
    faults = Faults(bad_frames=("unknown_type",), bad_frames_every_n_ticks=2)
    run_clock(target, ledger, credits_s=5, faults=faults)
    assert [cast(p.GenerationTick, m).seconds for m in target.sent] == [1, 2, 3, 4, 5]
    assert target.ended == ("insufficient_credits", "insufficient credits")
    assert target.raw == [faults.bad_frame("unknown_type")] * 2  # after ticks 2 and 4
    assert ledger.billed == 5


def test_the_clock_drops_before_sending_and_a_stall_is_counted_once() -> None:
    target, ledger = FakeTarget(), TickLedger()
    faults = Faults(stall_ticks_after=1, stall_ticks_for_s=60)

    async def later_drop() -> dict[str, int]:
        counters: dict[str, int] = {}

        def count(name: str) -> None:
            counters[name] = counters.get(name, 0) + 1

        settings = ServerSettings(tick_interval_s=0.001, faults=faults)
        clock = asyncio.ensure_future(run_billing_clock(target, ledger, settings, count))

        async def stalled_a_while() -> None:
            while ledger.billed < 4:  # one delivered tick, then at least three stalled ones
                await asyncio.sleep(0.001)

        await asyncio.wait_for(stalled_a_while(), 10)
        ledger.drop_due = 0.0
        await asyncio.wait_for(clock, 10)
        return counters

    counters = asyncio.run(later_drop())
    assert target.dropped and target.ended is None
    assert [cast(p.GenerationTick, m).seconds for m in target.sent] == [1]
    assert counters == {"ticks": 1, "stalls": 1}


# -- early candidates -----------------------------------------------------------------


def candidate(n: int) -> p.IceCandidate:
    return p.IceCandidate(candidate=f"candidate:{n} 1 udp 1 127.0.0.1 {9000 + n} typ host",
                          sdpMid="0", sdpMLineIndex=0)  # fmt: skip


def test_candidates_are_held_until_release_then_passed_through_in_order() -> None:
    buffer = CandidateBuffer()
    assert buffer.hold(candidate(1)) and buffer.hold(candidate(2))
    assert buffer.release() == [candidate(1), candidate(2)]
    assert buffer.release() == []  # released once
    assert not buffer.hold(candidate(3))  # remote set: the caller adds it itself


def test_a_reset_forgets_what_was_held_and_holds_again() -> None:
    buffer = CandidateBuffer()
    buffer.hold(candidate(1))
    buffer.reset()
    assert buffer.hold(candidate(2))
    assert buffer.release() == [candidate(2)]
    buffer.reset()
    assert buffer.hold(candidate(3))  # after a reset the remote description is unset


# -- a bad offer on a peer (aiortc objects, no socket) --------------------------------


class FakeWs:
    closed = False

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_str(self, data: str) -> None:
        self.sent.append(data)

    async def close(self) -> None:
        self.closed = True


class FakeServer:
    def __init__(self) -> None:
        self.settings = ServerSettings()
        self.faults = self.settings.faults
        self.port = 9
        self.counters: dict[str, int] = {}

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n


class BarePeer(ServerPeer):
    session_id = "sid"

    async def on_offer(self, sdp: str) -> None:
        attach: Attach = lambda pc: None  # noqa: E731
        self.answered = await self.negotiate(sdp, attach)


async def direction_less_offer() -> str:
    """An offer aiortc applies but cannot answer (``None is not in list``)."""
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("video", direction="sendrecv")
        sdp = (await pc.createOffer()).sdp
    finally:
        await pc.close()
    return "\r\n".join(line for line in sdp.split("\r\n") if line != "a=sendrecv")


async def test_an_unanswerable_offer_is_an_invalid_offer_and_drops_its_candidates() -> None:
    server, ws = FakeServer(), FakeWs()
    peer = BarePeer(cast(Any, server), cast(Any, ws))
    await peer.handle(p.IceCandidateMessage(candidate=candidate(1)))  # overtakes the offer
    await peer.handle(p.Offer(sdp=await direction_less_offer()))
    assert peer.answered is False
    assert peer.pc is None
    assert server.counters == {"protocol_errors": 1}
    (frame,) = [p.decode(s) for s in ws.sent]
    assert isinstance(frame, p.ErrorMessage) and frame.error.startswith("invalid offer: ")
    # the candidate trickled for the refused offer is gone; new ones wait for the next
    await peer.handle(p.IceCandidateMessage(candidate=candidate(2)))
    assert peer.candidates.release() == [candidate(2)]
    await peer.close()
