"""The marble scenarios that the docs draw (tests/marbles.py) are exact, and complete.

A scenario whose operator changed behaviour fails here before its picture changes in
the docs; an operator without a scenario fails here before it ships without a diagram.
"""

from __future__ import annotations

import inspect

import pytest
from marbles import MARBLES, Marble, by_operator, run

from rxrealtime import operators as rto


@pytest.mark.parametrize("marble", MARBLES, ids=[m.id for m in MARBLES])
def test_marble_scenario_gives_exactly_its_expected_records(marble: Marble) -> None:
    messages, session = run(marble)
    assert messages == marble.expected
    if marble.disconnects is not None:
        assert session.calls == marble.disconnects


def test_every_operator_has_a_marble_scenario() -> None:
    functions = {
        name
        for name in rto.__all__
        if inspect.isfunction(getattr(rto, name)) and not name.startswith("_")
    }
    assert functions, "rxrealtime.operators exports no operator functions?"
    assert functions == set(by_operator()), "a scenario per operator, and no stray ones"


def test_marble_ids_are_unique_file_names() -> None:
    ids = [m.id for m in MARBLES]
    assert len(ids) == len(set(ids))
    assert all(i.replace("-", "").replace("_", "").isalnum() for i in ids)


def test_marble_inputs_start_after_subscription_in_time_order() -> None:
    for marble in MARBLES:
        for records in marble.inputs.values():
            times = [r.time for r in records]
            assert times == sorted(times), marble.id
            assert min(times) >= 200, marble.id
