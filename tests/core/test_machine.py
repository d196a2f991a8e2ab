"""The session core without a socket: feed events, read decisions (``rxrealtime/core``).

Each test is one lifecycle rule; the end-to-end suites prove the same rules against the
embedded server, these prove them alone and in microseconds.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

import rxrealtime as rt
from rxrealtime import protocol as p
from rxrealtime.core.acks import AckBook
from rxrealtime.core.events import (
    AckTimedOut,
    CancelTimer,
    CloseForGood,
    CloseLink,
    ConnectAborted,
    ConnectFinished,
    ConnectRequested,
    DisconnectRequested,
    Emit,
    FailAck,
    FrameReceived,
    LinkDown,
    LinkUp,
    OpenLink,
    SetState,
    SettleAck,
    StartTimer,
    Stream,
    TimerFired,
)
from rxrealtime.core.machine import (
    TRANSITIONS,
    Rule,
    SessionCore,
    UndeclaredTransition,
    transition_table,
)
from rxrealtime.core.policy import CoreConfig, retryable

S = rt.ConnectionState
DELAYS = (0.5, 1.0, 2.0)


def new_core(**config: object) -> SessionCore:
    config.setdefault("reconnect_delays", DELAYS)
    config.setdefault("connect_timeout_s", 10.0)
    return SessionCore(CoreConfig(**config))  # type: ignore[arg-type]


def of(decisions: list[object], kind: type) -> list[object]:
    return [d for d in decisions if isinstance(d, kind)]


def emitted(decisions: list[object], stream: Stream) -> list[object]:
    return [d.value for d in decisions if isinstance(d, Emit) and d.stream == stream]


def up(**config: object) -> SessionCore:
    """A core whose first link is up (connected)."""
    core = new_core(**config)
    core.feed(ConnectRequested())
    core.feed(LinkUp(1))
    return core


def generating(**config: object) -> SessionCore:
    core = up(**config)
    core.feed(FrameReceived(1, p.GenerationStarted()))
    return core


LOST = rt.ConnectionLost("signaling socket closed (code 1006)")


# -- connecting ---------------------------------------------------------------------


def test_connect_opens_the_first_link_at_once_under_an_overall_deadline() -> None:
    core = new_core()
    out = core.feed(ConnectRequested(prompt=("snow", True), image="aW1n"))
    assert out == [
        SetState(S.CONNECTING),
        StartTimer("connect-deadline", 10.0, TimerFired("connect-deadline")),
        OpenLink(1, 1, "aW1n", ("snow", True)),
    ]
    assert core.state is S.CONNECTING


def test_connect_while_connecting_is_refused_with_the_state_named() -> None:
    core = new_core()
    core.feed(ConnectRequested())
    with pytest.raises(rt.RealtimeError, match="connect\\(\\) called while the session is conn"):
        core.feed(ConnectRequested())


def test_link_up_finishes_connect_and_cancels_the_deadline() -> None:
    core = new_core()
    core.feed(ConnectRequested())
    out = core.feed(LinkUp(1))
    assert out == [CancelTimer("connect-deadline"), SetState(S.CONNECTED), ConnectFinished()]


def test_generation_started_before_link_up_makes_link_up_reach_generating() -> None:
    core = new_core()
    core.feed(ConnectRequested())
    assert emitted(core.feed(FrameReceived(1, p.GenerationStarted())), Stream.GENERATION_STARTED)
    assert core.state is S.CONNECTING  # sticky, but only once the link is up
    states = of(core.feed(LinkUp(1)), SetState)
    assert states == [SetState(S.CONNECTED), SetState(S.GENERATING)]


def test_generation_started_while_connected_moves_to_generating() -> None:
    core = up()
    out = core.feed(FrameReceived(1, p.GenerationStarted()))
    assert out == [SetState(S.GENERATING), Emit(Stream.GENERATION_STARTED, p.GenerationStarted())]


def test_a_transient_connect_failure_retries_after_the_first_backoff_delay() -> None:
    core = new_core()
    core.feed(ConnectRequested())
    out = core.feed(LinkDown(1, LOST))
    assert emitted(out, Stream.ERRORS) == [LOST]
    assert CloseLink(1) in out
    assert StartTimer("retry", 0.5, TimerFired("retry")) in out
    assert core.state is S.CONNECTING and core.link is None
    assert of(core.feed(TimerFired("retry")), OpenLink) == [OpenLink(2, 2, None, None)]


def test_connect_gives_up_after_one_plus_max_attempts() -> None:
    core = new_core(reconnect_delays=(0.1,))
    core.feed(ConnectRequested())
    core.feed(LinkDown(1, LOST))
    core.feed(TimerFired("retry"))
    out = core.feed(LinkDown(2, LOST))
    assert of(out, ConnectFinished) == [ConnectFinished(LOST)]
    assert core.state is S.DISCONNECTED and not core.closed  # connect() may be called again


def test_a_permanent_error_frame_during_connect_fails_it_without_retry() -> None:
    core = new_core()
    core.feed(ConnectRequested())
    out = core.feed(FrameReceived(1, p.ErrorMessage(error="Invalid API key")))
    (error,) = emitted(out, Stream.ERRORS)
    assert isinstance(error, rt.AuthError)
    assert of(out, ConnectFinished) == [ConnectFinished(error)]
    assert not of(out, StartTimer) and core.state is S.DISCONNECTED
    assert core.feed(LinkDown(1, LOST)) == []  # the socket closing afterwards is stale


def test_a_capacity_error_during_connect_is_retried() -> None:
    core = new_core()
    core.feed(ConnectRequested())
    out = core.feed(FrameReceived(1, p.ErrorMessage(error="capacity: retry later")))
    assert [type(e) for e in emitted(out, Stream.ERRORS)] == [rt.ServerError]
    assert of(out, StartTimer)[0].name == "retry"


def test_a_rejected_initial_prompt_fails_connect_without_retry() -> None:
    core = new_core()
    core.feed(ConnectRequested(prompt=("x", True)))
    ack, _ = core.request("prompt", "x", link=1)
    out = core.feed(FrameReceived(1, p.PromptAck(prompt="x", success=False, error="nope")))
    (error,) = emitted(out, Stream.ERRORS)
    assert isinstance(error, rt.RequestRejected) and "nope" in str(error)
    assert FailAck(ack.id, error) in out
    out = core.feed(LinkDown(1, error))  # what the shell reports when the request raised
    assert emitted(out, Stream.ERRORS) == []  # published once
    assert of(out, ConnectFinished) == [ConnectFinished(error)]


def test_the_connect_deadline_reports_a_timeout_and_stops_retrying() -> None:
    core = new_core(connect_timeout_s=0.5, describe="ws://host/v1/stream")
    core.feed(ConnectRequested())
    core.feed(LinkDown(1, LOST))  # waiting to retry
    out = core.feed(TimerFired("connect-deadline"))
    (error,) = emitted(out, Stream.ERRORS)
    assert isinstance(error, rt.ConnectTimeout)
    assert str(error) == "no connection to ws://host/v1/stream within 0.5 s"
    assert CancelTimer("retry") in out and of(out, ConnectFinished) == [ConnectFinished(error)]
    assert core.state is S.DISCONNECTED


def test_an_ack_timeout_during_connect_is_published_once_and_retried() -> None:
    core = new_core(prompt_ack_timeout_s=0.2)
    core.feed(ConnectRequested(prompt=("slow", True)))
    ack, decisions = core.request("prompt", "slow", link=1)
    assert decisions == [StartTimer(f"ack:{ack.id}", 0.2, AckTimedOut(ack.id))]
    out = core.feed(AckTimedOut(ack.id))
    (error,) = emitted(out, Stream.ERRORS)
    assert isinstance(error, rt.AckTimeout) and "prompt_ack for 'slow'" in str(error)
    out = core.feed(LinkDown(1, error))
    assert emitted(out, Stream.ERRORS) == [] and of(out, StartTimer)[0].name == "retry"


def test_a_cancelled_connect_goes_back_to_disconnected_and_may_connect_again() -> None:
    core = new_core()
    core.feed(ConnectRequested())
    out = core.feed(ConnectAborted())
    assert CloseLink(1) in out and SetState(S.DISCONNECTED) in out
    assert not of(out, ConnectFinished) and not core.closed
    assert of(core.feed(ConnectRequested()), OpenLink) == [OpenLink(2, 1, None, None)]


# -- losing an established link -------------------------------------------------------


def test_a_lost_link_reconnects_after_the_backoff_and_restores_the_prompt() -> None:
    core = generating()
    core.request("prompt", "lava", remember=("lava", True))
    core.feed(FrameReceived(1, p.PromptAck(prompt="lava", success=True)))
    out = core.feed(LinkDown(1, LOST))
    assert out[:3] == [Emit(Stream.ERRORS, LOST), CloseLink(1), SetState(S.RECONNECTING)]
    assert StartTimer("retry", 0.5, TimerFired("retry")) in out
    out = core.feed(TimerFired("retry"))
    assert out == [
        StartTimer("attempt-deadline", 10.0, TimerFired("attempt-deadline")),
        OpenLink(2, 1, None, ("lava", True)),
    ]
    states = of(core.feed(LinkUp(2)), SetState)
    assert states == [SetState(S.CONNECTED)]


def test_a_rejected_prompt_is_not_restored_after_a_reconnect() -> None:
    core = generating()
    core.request("prompt", "bad", remember=("bad", True))
    core.feed(FrameReceived(1, p.PromptAck(prompt="bad", success=False, error="no")))
    core.feed(LinkDown(1, LOST))
    assert of(core.feed(TimerFired("retry")), OpenLink)[0].prompt is None  # type: ignore[attr-defined]


def test_a_reconnect_attempt_that_hangs_times_out_and_the_next_one_follows() -> None:
    core = generating()
    core.feed(LinkDown(1, LOST))
    core.feed(TimerFired("retry"))
    out = core.feed(TimerFired("attempt-deadline"))
    (error,) = emitted(out, Stream.ERRORS)
    assert isinstance(error, rt.ConnectTimeout) and str(error).startswith("attempt 1:")
    assert CloseLink(2) in out and StartTimer("retry", 1.0, TimerFired("retry")) in out


def test_reconnect_attempts_run_out_and_the_session_closes_for_good() -> None:
    core = generating(reconnect_delays=(0.1,))
    core.feed(LinkDown(1, LOST))
    core.feed(TimerFired("retry"))
    out = core.feed(LinkDown(2, LOST))
    assert out[-2:] == [SetState(S.DISCONNECTED), CloseForGood()]
    assert core.closed


def test_no_reconnect_when_the_policy_allows_none() -> None:
    core = generating(reconnect_delays=())
    out = core.feed(LinkDown(1, LOST))
    assert CloseForGood() in out and SetState(S.RECONNECTING) not in out


def test_a_link_lost_after_generation_ended_closes_quietly() -> None:
    core = generating()
    ended = p.GenerationEnded(seconds=2, reason="insufficient_credits")
    assert emitted(core.feed(FrameReceived(1, ended)), Stream.GENERATION_ENDED) == [ended]
    out = core.feed(LinkDown(1, LOST))
    assert emitted(out, Stream.ERRORS) == [] and CloseForGood() in out


def test_a_permanent_error_while_generating_closes_for_good_and_is_published_once() -> None:
    core = generating()
    out = core.feed(FrameReceived(1, p.ErrorMessage(error="permission denied")))
    assert [type(e) for e in emitted(out, Stream.ERRORS)] == [rt.AuthError]
    assert CloseForGood() in out and SetState(S.RECONNECTING) not in out


def test_a_transient_error_while_generating_is_only_published() -> None:
    core = generating()
    out = core.feed(FrameReceived(1, p.ErrorMessage(error="model hiccup")))
    assert [type(e) for e in emitted(out, Stream.ERRORS)] == [rt.ServerError]
    assert len(out) == 1 and core.state is S.GENERATING


def test_a_permanent_error_on_a_reconnect_attempt_is_never_retried() -> None:
    core = generating()
    core.feed(LinkDown(1, LOST))
    core.feed(TimerFired("retry"))
    out = core.feed(FrameReceived(2, p.ErrorMessage(error="invalid api key")))
    assert CloseForGood() in out and not of(out, StartTimer)


def test_server_error_text_is_redacted_before_it_becomes_an_error() -> None:
    core = up(redact=lambda text: text.replace("sekrit", "***"))
    frame = p.ErrorMessage(error="bad key sekrit")
    (error,) = emitted(core.feed(FrameReceived(1, frame)), Stream.ERRORS)
    assert str(error) == "bad key ***"


# -- identity, staleness ---------------------------------------------------------------


def test_session_started_is_announced_once_per_link() -> None:
    core = up()
    frame = p.SessionIdMessage(session_id="a", server_ip="127.0.0.1", server_port=9)
    (info,) = emitted(core.feed(FrameReceived(1, frame)), Stream.SESSION_STARTED)
    assert info.sid == "a" and p.parse_subscribe_token(info.subscribe_token).sid == "a"
    assert emitted(core.feed(FrameReceived(1, frame)), Stream.SESSION_STARTED) == []  # ice-restart
    core.feed(LinkDown(1, LOST))
    core.feed(TimerFired("retry"))
    core.feed(LinkUp(2))
    again = p.SessionIdMessage(session_id="b", server_ip="127.0.0.1", server_port=9)
    assert [i.sid for i in emitted(core.feed(FrameReceived(2, again)), Stream.SESSION_STARTED)] == [
        "b"
    ]


def test_events_about_a_replaced_link_are_ignored() -> None:
    core = generating()
    core.feed(LinkDown(1, LOST))
    core.feed(TimerFired("retry"))
    assert core.feed(LinkDown(1, LOST)) == []
    assert core.feed(FrameReceived(1, p.ErrorMessage(error="invalid api key"))) == []
    assert core.state is S.RECONNECTING


def test_an_event_with_no_row_for_the_state_is_refused() -> None:
    core = up()
    assert TimerFired not in TRANSITIONS[S.CONNECTED]
    with pytest.raises(rt.RealtimeError, match="TimerFired is not allowed while connected"):
        core.feed(TimerFired("retry"))


def test_every_state_accepts_disconnect_and_the_table_renders_every_row() -> None:
    assert all(DisconnectRequested in rules for rules in TRANSITIONS.values())
    rows = transition_table()
    assert len(rows) == sum(len(rules) for rules in TRANSITIONS.values())
    assert ("generating", "LinkDown", "link_lost", "reconnecting, disconnected") in rows


# -- the table holds functions and its outcomes are checked ------------------------------


def test_every_row_holds_a_rule_function_of_the_core_and_declares_its_outcomes() -> None:
    for rules in TRANSITIONS.values():
        for rule in rules.values():
            assert getattr(SessionCore, rule.run.__name__) is rule.run  # the function itself
            assert rule.outcomes and set(rule.outcomes) <= set(S)


def test_a_rule_that_ends_in_a_state_its_row_does_not_declare_fails_loudly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lying = Rule(SessionCore._connect, (S.CONNECTED,))  # _connect ends in connecting
    monkeypatch.setitem(TRANSITIONS[S.DISCONNECTED], ConnectRequested, lying)
    core = new_core()
    with pytest.raises(UndeclaredTransition, match=r"connect .* left the core connecting"):
        core.feed(ConnectRequested())
    assert issubclass(UndeclaredTransition, AssertionError)
    assert not issubclass(UndeclaredTransition, rt.RealtimeError)  # the shell logs those


def test_a_rule_function_that_moves_the_core_elsewhere_fails_loudly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def rogue(core: SessionCore, event: object) -> None:
        core.state = S.GENERATING  # a rule gone wrong: connected -> generating on a timeout

    monkeypatch.setitem(TRANSITIONS[S.CONNECTED], AckTimedOut, Rule(rogue, (S.CONNECTED,)))
    core = up()
    with pytest.raises(AssertionError, match=r"rogue .*AckTimedOut while connected"):
        core.feed(AckTimedOut(1))


FRAMES = [
    p.SessionIdMessage(session_id="s", server_ip="127.0.0.1", server_port=9),
    p.PromptAck(prompt="p", success=True), p.PromptAck(prompt="p", success=False, error="no"),
    p.SetImageAck(success=True), p.GenerationStarted(),
    p.GenerationEnded(seconds=3, reason="insufficient_credits"),
    p.ErrorMessage(error="model hiccup"), p.ErrorMessage(error="invalid api key"),
    p.ErrorMessage(error="capacity: retry later"),
]  # fmt: skip
ERRORS = [LOST, rt.AuthError("invalid api key"), rt.ConnectTimeout("slow")]


TIMERS = ["retry", "connect-deadline", "attempt-deadline"]


def _event(core: SessionCore, kind: type, pick: random.Random) -> Any:
    """An instance of ``kind`` that the shell could feed now (about the current link)."""
    link, at = core.link or 1, pick.uniform(0, 1e4)
    if kind is ConnectRequested:
        return ConnectRequested(prompt=pick.choice([None, ("p", True)]))
    if kind is LinkUp:
        return LinkUp(link, at)
    if kind is LinkDown:
        return LinkDown(link, pick.choice(ERRORS), at)
    if kind is FrameReceived:  # generation_started a third of the time, or few lives get there
        return FrameReceived(link, pick.choice([*FRAMES, *[p.GenerationStarted()] * 4]))
    if kind is TimerFired:
        return TimerFired(pick.choice(TIMERS))
    if kind is AckTimedOut:
        return AckTimedOut(pick.randint(1, 4))
    return kind()


def test_no_life_of_a_core_takes_a_rule_outside_its_declared_outcomes() -> None:
    """Random lives of a core, each event one its current state has a row for (the
    shell feeds nothing else), with requests in between: every rule ends within its
    row's outcomes, and every outcome a row declares is reached: the table is exact.
    The seed is fixed, so a failure repeats."""
    pick, reached = random.Random(20260), set()
    for _ in range(5000):
        core = new_core(reconnect_delays=pick.choice([(), (0.0,), (0.5, 1.0)]))
        for _ in range(pick.randint(1, 60)):
            if core.closed:
                break
            if core.link is not None and pick.random() < 0.3:
                try:
                    core.request("prompt", "p", remember=("p", True), link=core.link)
                except rt.NotConnected:
                    pass
            before, kind = core.state, pick.choice(list(TRANSITIONS[core.state]))
            core.feed(_event(core, kind, pick))  # raises UndeclaredTransition if not
            reached.add((before, kind, core.state))
    declared = {(state, kind, to) for state, rules in TRANSITIONS.items()
                for kind, rule in rules.items() for to in rule.outcomes}  # fmt: skip
    assert declared - reached == set()  # no outcome declared that no life reaches


# -- acknowledgements ---------------------------------------------------------------------


def test_acks_are_matched_by_prompt_text_oldest_first() -> None:
    core = up()
    first, _ = core.request("prompt", "a")
    second, _ = core.request("prompt", "b")
    third, _ = core.request("prompt", "a")
    out = core.feed(FrameReceived(1, p.PromptAck(prompt="a", success=True)))
    assert of(out, SettleAck) == [SettleAck(first.id, p.PromptAck(prompt="a", success=True))]
    assert CancelTimer(f"ack:{first.id}") in out
    assert len(core.acks) == 2 and {second.id, third.id} == {a.id for a in core.acks.drop_all()}


def test_a_late_ack_after_its_timeout_settles_nothing_but_is_still_published() -> None:
    core = up()
    ack, _ = core.request("image", None)
    out = core.feed(AckTimedOut(ack.id))
    assert [type(d) for d in out] == [Emit, FailAck]
    late = p.SetImageAck(success=True)
    assert core.feed(FrameReceived(1, late)) == [Emit(Stream.IMAGE_ACKS, late)]


def test_a_lost_link_fails_its_open_requests_with_the_cause() -> None:
    core = generating()
    ack, _ = core.request("prompt", "p")
    out = core.feed(LinkDown(1, LOST))
    assert FailAck(ack.id, LOST) in out and len(core.acks) == 0


def test_requests_need_a_usable_link() -> None:
    core = new_core()
    with pytest.raises(rt.NotConnected, match="disconnected"):
        core.request("prompt", "p")
    core.feed(ConnectRequested())
    core.feed(LinkUp(1))
    core.feed(LinkDown(1, LOST))
    core.feed(TimerFired("retry"))
    with pytest.raises(rt.NotConnected, match="reconnecting"):
        core.request("prompt", "p")
    ack, _ = core.request("prompt", "p", link=2)  # the shell restoring on the new link
    assert ack.id > 0


def test_an_abandoned_request_is_forgotten_with_its_timer() -> None:
    core = up()
    ack, _ = core.request("prompt", "p")
    assert core.abandon(ack.id) == [CancelTimer(f"ack:{ack.id}")]
    assert core.abandon(ack.id) == [] and len(core.acks) == 0


# -- closing ------------------------------------------------------------------------------


def test_disconnect_while_generating_drains_then_closes_for_good() -> None:
    core = generating()
    core.request("prompt", "p")
    out = core.feed(DisconnectRequested())
    assert CloseLink(1, drain_s=1.0) in out
    (fail,) = of(out, FailAck)
    assert isinstance(fail.error, rt.SessionClosed)  # type: ignore[attr-defined]
    assert out[-2:] == [SetState(S.DISCONNECTED), CloseForGood()]


def test_disconnect_while_connecting_fails_connect_with_session_closed() -> None:
    core = new_core()
    core.feed(ConnectRequested())
    out = core.feed(DisconnectRequested())
    (finished,) = of(out, ConnectFinished)
    assert isinstance(finished.error, rt.SessionClosed)  # type: ignore[attr-defined]
    assert CloseLink(1, drain_s=0.0) in out and CloseForGood() in out


def test_a_closed_core_ignores_everything_and_refuses_requests() -> None:
    core = up()
    core.feed(DisconnectRequested())
    assert core.closed
    assert core.feed(LinkUp(1)) == [] and core.feed(DisconnectRequested()) == []
    with pytest.raises(rt.SessionClosed):
        core.request("prompt", "p")


# -- policy and the ack book ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (rt.ConnectionLost("x"), True),
        (rt.ServerError("capacity"), True),
        (rt.AuthError("invalid api key"), False),
        (rt.ServerError("401"), False),
        (rt.RequestRejected("no"), False),
        (rt.SessionClosed("bye"), False),
        (rt.ConfigError("bad"), False),
        (None, True),
    ],
)
def test_retryable_follows_the_protocols_permanent_errors(
    error: BaseException | None, expected: bool
) -> None:
    assert retryable(error) is expected


def test_ack_book_settles_per_key_in_order_and_drops_by_id() -> None:
    book = AckBook()
    a = book.open("prompt", "x", "a")
    b = book.open("prompt", "x", "b")
    c = book.open("image", None, "c")
    assert book.drop(a.id) == a and book.drop(a.id) is None
    assert book.settle("prompt", "x") == b and book.settle("prompt", "x") is None
    assert book.settle("prompt", "y") is None
    assert book.drop_all() == [c] and len(book) == 0


# -- hostile servers: budget, close codes, billing sanity -------------------------------------


def test_the_reconnect_budget_closes_a_session_whose_links_keep_dying() -> None:
    core = generating(reconnect_budget=2, reconnect_window_s=60.0)
    for number, at in ((1, 0.0), (2, 1.0)):  # two losses: within the budget
        assert SetState(S.RECONNECTING) in core.feed(LinkDown(number, LOST, at))
        core.feed(TimerFired("retry"))
        core.feed(LinkUp(number + 1))
    out = core.feed(LinkDown(3, LOST, 2.0))
    (gave_up,) = [e for e in emitted(out, Stream.ERRORS) if e is not LOST]
    assert "gave up reconnecting" in str(gave_up) and CloseForGood() in out


def test_losses_outside_the_budget_window_are_forgiven() -> None:
    core = generating(reconnect_budget=1, reconnect_window_s=10.0)
    core.feed(LinkDown(1, LOST, 0.0))
    core.feed(TimerFired("retry"))
    core.feed(LinkUp(2))
    assert SetState(S.RECONNECTING) in core.feed(LinkDown(2, LOST, 11.0))


@pytest.mark.parametrize(
    ("code", "permanent", "text"),
    [
        (None, False, "code 1006: abnormal closure"),
        (1006, False, "code 1006"),
        (1011, False, "code 1011: internal server error"),
        (1009, False, "code 1009: message too big"),
        (1000, True, "normal closure"),
        (4001, True, "application code 4001"),
        (4999, True, "application code 4999"),
    ],
)
def test_close_codes_say_what_they_mean_and_which_are_final(
    code: int | None, permanent: bool, text: str
) -> None:
    from rxrealtime.core.policy import close_error

    error = close_error(code)
    assert error.permanent is permanent and text in str(error)
    assert retryable(error) is not permanent


def test_tick_guard_refuses_jumps_faster_than_time_but_passes_late_and_stalled_ticks() -> None:
    from rxrealtime.core.policy import TickGuard

    guard = TickGuard(max_step_s=60)
    assert guard.admits(1, 0.0) and guard.admits(2, 1.0)
    assert not guard.admits(1_000_002, 1.5)  # refused, and the mark stays at 2
    assert guard.admits(3, 2.0)
    assert guard.admits(2, 2.1)  # a late tick: the billing operators bill it 0
    assert guard.admits(3 + 600, 302.0)  # after a 300 s silence, 600 s of billing is possible
    assert not guard.admits(603 + 700, 302.0)  # but not 1300 s within 302 s of the first tick
    assert "jumps from 603 to 1303" in guard.explain(1303)
    assert not TickGuard(max_step_s=60).admits(61, 0.0)  # a first tick is a step from 0


def test_livekit_room_info_announces_the_session_with_a_room_token() -> None:
    core = new_core()
    core.feed(ConnectRequested())
    info = p.LivekitRoomInfo(livekit_url="ws://127.0.0.1:7880", token="t", room_name="r-1",
                             session_id="s-1")  # fmt: skip
    (started,) = emitted(core.feed(FrameReceived(1, info)), Stream.SESSION_STARTED)
    assert started.sid == "s-1" and (started.ip, started.port) == ("", 0)
    assert p.parse_any_subscribe_token(started.subscribe_token) == p.RoomTarget(room_name="r-1")


# -- diagnostics and jitter ---------------------------------------------------------------------


def test_reconnect_attempts_and_the_reconnect_are_diagnostics() -> None:
    from rxrealtime.diagnostics import ReconnectAttempt, Reconnected

    core = generating()
    out = core.feed(LinkDown(1, LOST, at=100.0))
    assert emitted(out, Stream.DIAGNOSTICS) == [
        ReconnectAttempt(1, 0.5, "ConnectionLost: signaling socket closed (code 1006)")
    ]
    core.feed(TimerFired("retry"))
    assert emitted(core.feed(LinkUp(2, at=101.25)), Stream.DIAGNOSTICS) == [Reconnected(1, 1.25)]


def test_jitter_spreads_the_waits_of_two_sessions() -> None:
    import random

    from rxrealtime.core.policy import make_jitter

    waits = []
    for seed in (1, 2):
        core = generating(jitter=make_jitter("full", random.Random(seed)))
        (start,) = of(core.feed(LinkDown(1, LOST)), StartTimer)
        waits.append(start.delay_s)  # type: ignore[attr-defined]
    assert waits[0] != waits[1] and all(0 <= w <= 0.5 for w in waits)


def test_decorrelated_jitter_grows_but_stays_under_its_cap() -> None:
    import random

    from rxrealtime.core.policy import make_jitter

    jitter = make_jitter("decorrelated", random.Random(7), cap_s=4.0)
    waits = [jitter(1.0) for _ in range(20)]
    assert all(1.0 <= w <= 4.0 for w in waits) and max(waits) > 2.0
    assert make_jitter("none")(3.0) == 3.0 and make_jitter("full")(0.0) == 0.0
