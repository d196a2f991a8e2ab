"""The sans-I/O session core: the lifecycle as a state machine, events in, decisions out.

Nothing in this package does I/O, starts a task or reads a clock (a test holds it to
that): :mod:`~rxrealtime.core.machine` holds the rules and their table,
:mod:`~rxrealtime.core.steps` the core's memory and the small steps the rules share,
:mod:`~rxrealtime.core.events` the events it is fed and the decisions it answers,
:mod:`~rxrealtime.core.policy` retries and error classes, :mod:`~rxrealtime.core.acks`
the book of open requests. The asyncio shell (:mod:`rxrealtime.asyncio`) carries the
decisions out.
"""

from __future__ import annotations

from .machine import TRANSITIONS, Rule, SessionCore, UndeclaredTransition, transition_table

__all__ = ["TRANSITIONS", "Rule", "SessionCore", "UndeclaredTransition", "transition_table"]
