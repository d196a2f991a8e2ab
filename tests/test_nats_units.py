"""rxrealtime.nats without a server: frames, subjects, the ledger's idempotent totals,
the publisher's buffer policy, and what importing costs."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rxrealtime as rt

nats = pytest.importorskip("nats", reason="nats-py is not installed: pip install nats-py")
if nats is None and os.environ.get("CI") == "true":  # pragma: no cover
    pytest.fail("nats-py must be installed in CI", pytrace=False)

from rxrealtime.nats import (  # noqa: E402
    FleetLedger,
    StateFrame,
    StopCommand,
    Subjects,
    TickFrame,
    decode_frame,
    encode_frame,
)
from rxrealtime.nats.buffer import OutBuffer  # noqa: E402
from rxrealtime.nats.frames import EndedFrame, ErrorFrame, decode_command  # noqa: E402
from rxrealtime.nats.ledger import SeenSeqs  # noqa: E402

S = rt.ConnectionState


def tick(seconds: int, sid: str = "sid-a", seq: int = 1, client: str = "c1", key: str = "sid-a"):
    return TickFrame(
        worker="w1",
        client=client,
        key=key,
        sid=sid,
        model="lucy-2.6",
        seq=seq,
        at=1.0,
        seconds=seconds,
    )


# -- frames and subjects ---------------------------------------------------------------


def test_frames_round_trip_compactly() -> None:
    base = {"worker": "w1", "client": "c", "key": "k", "sid": "s", "model": "m"}
    frames = [
        tick(12, sid="b" * 32, key="a" * 32, client="0123456789abcdef"),
        StateFrame(**{**base, "key": "", "sid": ""}, seq=2, at=2.5, state=S.GENERATING),
        ErrorFrame(**base, seq=3, at=3.0, type="ServerError", message="boom"),
        EndedFrame(**base, seq=4, at=4.0, seconds=9, reason="insufficient_credits"),
    ]
    for frame in frames:
        assert decode_frame(encode_frame(frame)) == frame
    assert len(encode_frame(frames[0])) < 130  # two 32-char ids dominate


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"garbage", "malformed fleet frame"),
        (b"", "malformed fleet frame"),
        (encode_frame(tick(5))[:-3], "malformed fleet frame"),
        (b"\x93\xa4tick\xa2w1\x01", "malformed fleet frame"),
        (encode_frame(tick(5, sid="")), "billing without a server session id"),
        (encode_frame(tick(5, client="")), "no client id"),
    ],
)
def test_malformed_frames_raise_protocol_error_only(data: bytes, reason: str) -> None:
    with pytest.raises(rt.ProtocolError, match=reason):
        decode_frame(data)


def test_out_of_range_seconds_and_unknown_states_are_refused() -> None:
    import msgspec

    too_many = msgspec.msgpack.encode(["tick", "w", "c", "k", "s", "m", 1, 1.0, 10**8])
    with pytest.raises(rt.ProtocolError):
        decode_frame(too_many)
    bad_state = msgspec.msgpack.encode(["state", "w", "c", "k", "s", "m", 1, 1.0, "flying"])
    with pytest.raises(rt.ProtocolError):
        decode_frame(bad_state)
    newer = msgspec.msgpack.encode(["tick", "w", "c", "k", "s", "m", 1, 1.0, 5, "extra"])
    assert decode_frame(newer).seconds == 5  # type: ignore[union-attr]  # trailing fields


def test_subjects_and_tokens() -> None:
    subjects = Subjects("rxrealtime")
    assert subjects.stream == "RXREALTIME"
    assert subjects.event(tick(1, key="abc")) == "rxrealtime.w1.abc.tick"
    assert subjects.event(tick(1, key="", client="c9")) == "rxrealtime.w1.pending-c9.tick"
    assert subjects.control("w1", "a.b") == "rxrealtime.control.w1.a_b"
    assert subjects.is_control("rxrealtime.control.fleet")
    assert Subjects("acme.video-fleet").stream == "ACME_VIDEO_FLEET"
    for bad in ("", "a..b", "a b", "x.>"):
        with pytest.raises(rt.ConfigError):
            Subjects(bad)


def test_stop_commands_are_json_and_a_bare_stop_is_valid() -> None:
    assert decode_command(b"") == StopCommand()
    command = decode_command(b'{"reason": "manual", "worker": "w1", "key": "k"}')
    assert command.targets("w1", "k") and not command.targets("w2", "k")
    assert StopCommand().fleet_wide and StopCommand().targets("any", None)
    with pytest.raises(rt.ProtocolError, match="malformed stop command"):
        decode_command(b"{nope")


# -- the ledger --------------------------------------------------------------------------


def test_ledger_counts_max_per_server_session_and_keeps_the_first_key() -> None:
    ledger = FleetLedger()
    for seq, (sid, s) in enumerate([("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)], 1):
        ledger.apply(tick(s, sid=sid, seq=seq, key="a"))
    assert ledger.total == 5
    assert ledger.billed_by_server_session == {"a": 3, "b": 2}
    assert ledger.billed_by_session == {"a": 5}
    again = ledger.apply(tick(3, sid="a", seq=3, key="a"))  # a redelivery
    assert again.duplicate and again.delta == 0 and ledger.total == 5
    late = ledger.apply(tick(2, sid="a", seq=99, key="a"))  # late, out of order
    assert not late.duplicate and late.delta == 0 and ledger.total == 5


def test_ledger_lists_a_server_session_that_billed_nothing() -> None:
    # a reconnect just before the worker stops: its new server session ends before its
    # first tick; the servers list it at 0 s, so must the fleet
    ledger = FleetLedger()
    ledger.apply(tick(3, sid="a", seq=1, key="a"))
    gone = StateFrame(
        worker="w", client="c1", key="a", sid="b", model="m", seq=2, at=2.0,
        state=S.DISCONNECTED,
    )  # fmt: skip
    ledger.apply(gone)
    assert ledger.billed_by_server_session == {"a": 3, "b": 0}
    assert ledger.total == 3 and ledger.members["c1"].total == 3
    restored = FleetLedger()
    restored.restore(ledger.record("c1"))
    assert restored.billed_by_server_session == {"a": 3, "b": 0}
    pending = StateFrame(
        worker="w", client="c2", key="", sid="", model="m", seq=1, at=1.0, state=S.CONNECTING
    )
    ledger.apply(pending)  # no server session yet: nothing listed
    assert ledger.members["c2"].billed == {}


def test_ledger_states_take_the_newest_and_count_generating() -> None:
    ledger = FleetLedger()

    def state(st_: rt.ConnectionState, seq: int) -> StateFrame:
        return StateFrame(
            worker="w", client="c", key="k", sid="s", model="m", seq=seq, at=float(seq), state=st_
        )

    assert ledger.apply(state(S.GENERATING, 2)).generating_change == 1
    stale = ledger.apply(state(S.CONNECTING, 1))  # older than what we have: ignored
    assert not stale.state_changed and ledger.generating == 1
    assert ledger.apply(state(S.DISCONNECTED, 3)).generating_change == -1
    assert ledger.members["c"].state is S.DISCONNECTED and ledger.generating == 0


frames_strategy = st.lists(
    st.tuples(
        st.sampled_from(["c1", "c2", "c3"]), st.sampled_from(["s1", "s2"]), st.integers(0, 50)
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(frames_strategy, st.randoms(use_true_random=False))
def test_ledger_totals_do_not_depend_on_order_duplicates_or_restarts(events, rnd) -> None:
    frames = [
        tick(s, sid=f"{c}-{sid}", seq=i + 1, client=c, key=c)
        for i, (c, sid, s) in enumerate(events)
    ]
    expected: dict[str, int] = {}
    for f in frames:
        expected[f.sid] = max(expected.get(f.sid, 0), f.seconds)
    # JetStream may deliver again, out of order; an aggregator may restart mid-way
    delivered = frames + rnd.sample(frames, k=len(frames) // 2)
    rnd.shuffle(delivered)
    cut = rnd.randrange(len(delivered) + 1)
    first = FleetLedger()
    for f in delivered[:cut]:
        first.apply(f)
    restarted = FleetLedger()
    for client in first.members:
        restarted.restore(first.record(client))
    for f in delivered[cut // 2 :]:  # what was not acknowledged comes again
        restarted.apply(f)
    assert restarted.billed_by_server_session == expected
    assert restarted.total == sum(expected.values())


def test_seen_seqs_floor_advances_and_stays_bounded() -> None:
    seen = SeenSeqs()
    order = list(range(1, 2001))
    random.Random(3).shuffle(order)
    assert all(seen.add(n) for n in order)
    assert seen.floor == 2000 and not seen.above
    assert not seen.add(1500)
    for n in range(3000, 3000 + 5000, 1):  # a gap (2001..2999) that never fills
        seen.add(n)
    assert len(seen.above) <= 4096


# -- the buffer --------------------------------------------------------------------------


def push(buffer: OutBuffer, client: str, kind: str, name: str, sid: str = "s") -> list[str]:
    slot = (client, sid) if kind in ("tick", "ended") else None
    dropped = buffer.push(client, "subj", b"x", name, slot, kind == "tick")
    return [d.msg_id for d in dropped]


def test_buffer_drops_superseded_ticks_first_then_states_then_the_oldest() -> None:
    buffer = OutBuffer(limit=3)
    push(buffer, "c", "state", "state-1")
    push(buffer, "c", "tick", "tick-1")
    push(buffer, "c", "tick", "tick-2")
    assert push(buffer, "c", "tick", "tick-3") == ["tick-1"]  # superseded: billing intact
    assert push(buffer, "c", "error", "error-1") == ["tick-2"]
    assert push(buffer, "d", "tick", "tick-d") == ["state-1"]  # then states and errors
    assert push(buffer, "e", "ended", "ended-e") == ["error-1"]
    assert push(buffer, "f", "tick", "tick-f") == ["tick-3"]  # then the oldest: billing
    counts = buffer.take_drops()
    assert (counts["c"].dropped, counts["c"].superseded, counts["c"].billing) == (5, 2, 1)
    assert buffer.dropped_total == 5 and len(buffer) == 3


def test_buffer_never_drops_what_is_being_published_and_keeps_failed_ones() -> None:
    buffer = OutBuffer(limit=2)
    push(buffer, "c", "state", "state-1")
    push(buffer, "c", "error", "error-1")
    batch = buffer.take(2)
    assert push(buffer, "c", "state", "state-2") == []  # the rest is in flight: over the limit
    assert len(buffer) == 3
    buffer.settle(batch[0], ok=True)
    buffer.settle(batch[1], ok=False)  # stays, in place, for a retry
    assert [e.msg_id for e in buffer.take(5)] == ["error-1", "state-2"]


# -- imports -------------------------------------------------------------------------------


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


def test_import_rxrealtime_does_not_import_nats() -> None:
    out = run_python("import json, sys, rxrealtime\nprint(json.dumps(sorted(sys.modules)))")
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    assert "rxrealtime" in loaded
    assert not {m for m in loaded if m == "nats" or m.startswith(("nats.", "rxrealtime.nats"))}


def test_without_nats_py_the_import_says_what_to_install() -> None:
    out = run_python("import sys\nsys.modules['nats'] = None\nimport rxrealtime.nats")
    assert out.returncode != 0
    assert "pip install 'rxrealtime[nats]'" in out.stderr
