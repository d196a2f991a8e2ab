"""Test a budget alert against a recorded session, in virtual time.

``tapes/demo.tape.jsonl`` is 30 s of a real session (recorded with ``rt.tapes.record``:
a dropped socket and a reconnect, a stall, a rejected prompt). Replayed on reactivex's
``TestScheduler`` it runs in milliseconds, and the pipeline under test is the one that
would watch a live session: nothing in it knows it is a replay.
"""

import time
from pathlib import Path

from reactivex.testing import TestScheduler

import rxrealtime as rt
from rxrealtime import operators as rto

TAPE = Path(__file__).resolve().parent / "tapes" / "demo.tape.jsonl"


def budget_alerts(session, limit_s):  # the code under test: it takes any session
    billed = session.generation_ticks.pipe(rto.billed_seconds(resets=session.session_started))
    return billed.pipe(rto.budget_alert(limit_s=limit_s, rate_per_second="0.05"))


def main() -> None:
    scheduler = TestScheduler()
    session = rt.tapes.replay(TAPE, scheduler=scheduler)
    alerts = []
    budget_alerts(session, limit_s=20).subscribe(lambda a: alerts.append((scheduler.clock, a)))

    started = time.perf_counter()
    scheduler.start()  # the whole tape, in virtual time
    elapsed_ms = (time.perf_counter() - started) * 1000

    for at, a in alerts:
        print(f"at {at:5.2f} s: {a.threshold:.0%} of budget, {a.billed_s} s, cost {a.cost}")
    # What the tape says happened: 8 s billed, a reconnect (billing goes on from 8, not
    # from 0), the 50 % and 80 % alerts, a 4 s stall, then 100 % at once (20 s billed).
    assert [(a.threshold, a.billed_s) for _, a in alerts] == [(0.5, 10), (0.8, 16), (1.0, 20)]
    assert alerts[2][0] - alerts[1][0] > 3.9  # the stall delayed the last alert
    print(f"{rt.tapes.load(TAPE).duration_s:.1f} s of tape replayed in {elapsed_ms:.0f} ms")


main()
