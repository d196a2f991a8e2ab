"""The billing clock shared by the billing operators: pure, no Rx, no time.

Ticks carry the *cumulative* billed seconds of one server session, and each reconnect is
a new server session whose count restarts at 0 (PROTOCOL.md). :class:`BillingClock`
turns that into a total for the client session. The rules, in one place:

* ``seconds`` higher than the last value of the current server session: the difference
  is billed.
* the same value again (a duplicate tick): 0 is billed.
* a lower value, with **no reset signal** wired in (``resets_known=False``): a drop is
  the only evidence of a reconnect, so it starts a new server session and the whole
  value is billed. A tick that merely arrived out of order is indistinguishable from a
  reconnect in that mode and is billed as one (over-counting); pass a reset stream when
  input may be reordered.
* a lower value **with** a reset signal wired in (``resets_known=True``): new server
  sessions are announced by :meth:`reset`, so a drop inside one server session can only
  be a late, out-of-order tick: it bills 0 and does not move the high-water mark.

Only :meth:`reset` starts a new server session in the second mode; it is idempotent
until the next tick, so a reset announced twice (``reconnecting`` then
``session_started``) does not double count.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BillingClock", "seconds_of"]


def seconds_of(value: Any) -> int:
    """The cumulative seconds of a ``GenerationTick``/``GenerationEnded`` or a bare int."""
    seconds = value if isinstance(value, int) else getattr(value, "seconds", None)
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise TypeError(f"expected a GenerationTick or an int of seconds, got {value!r}")
    return seconds


class BillingClock:
    """Total billed seconds across server sessions; see the module docstring."""

    __slots__ = ("_last", "_offset", "resets_known")

    def __init__(self, resets_known: bool = False) -> None:
        self.resets_known = resets_known
        self._offset = 0  # billed by the previous server sessions
        self._last = 0  # high-water mark of the current server session

    @property
    def total(self) -> int:
        return self._offset + self._last

    def feed(self, seconds: int) -> int:
        """Account for one tick; returns the seconds it bills (0 or more)."""
        if seconds < 0:
            return 0  # nonsense from a broken server; billing never goes backwards
        if seconds >= self._last:
            delta = seconds - self._last
            self._last = seconds
            return delta
        if self.resets_known:
            return 0  # a late tick of the current server session
        self._offset += self._last
        self._last = seconds
        return seconds

    def reset(self) -> None:
        """A new server session starts: its ticks count from 0 on top of the total."""
        self._offset += self._last
        self._last = 0
