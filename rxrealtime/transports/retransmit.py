"""Each lost video packet is resent a bounded number of times, so loss cannot snowball.

aiortc's receiver, on every new gap in the sequence numbers, NACKs *every* packet it is
still missing (up to 128 back), and aiortc's sender resends each NACKed packet every
time it is asked. On a lossy link near its cap that feeds on itself: a retransmission
lost too is asked for again at each new gap, the resends fill the link, its queue drops
more, and there are more gaps. Measured on an impaired veth link (10 % random loss, a
500 kbit/s cap, 320x180@15): in one 10 s run the server sent 1,031 retransmissions for
about 40 lost packets, the link ran at its cap and the session measured 38 % loss where
the link's random drop was 10 %.

:class:`RetransmitGate` is the rule WebRTC's own senders follow, pure: a packet is
resent at most once per ``min_gap_s`` (a resend already on its way is not sent again)
and at most ``max_tries`` times. :func:`install` puts one in front of an aiortc
sender's retransmission (its private method, 1.x: without it the sender is left as is).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["RetransmitGate", "install"]

_SENDER_METHOD = "_retransmit"
TRACKED = 512
"""Sequence numbers remembered: several times aiortc's 128-packet history, and few
enough that a number reused after 65,536 packets is long forgotten."""


class RetransmitGate:
    """Whether a NACKed packet may be resent now (its own count and clock per packet)."""

    def __init__(self, *, min_gap_s: float = 0.25, max_tries: int = 2) -> None:
        self.min_gap_s = min_gap_s
        self.max_tries = max_tries
        self.refused = 0
        """Resends held back (repeats within ``min_gap_s`` or past ``max_tries``)."""
        self._sent: OrderedDict[int, tuple[float, int]] = OrderedDict()

    def allow(self, sequence_number: int, now: float) -> bool:
        """Record and allow a resend of ``sequence_number`` at ``now``, or refuse it."""
        last = self._sent.get(sequence_number)
        if last is not None and (now - last[0] < self.min_gap_s or last[1] >= self.max_tries):
            self.refused += 1
            return False
        self._sent[sequence_number] = (now, 1 if last is None else last[1] + 1)
        self._sent.move_to_end(sequence_number)
        if len(self._sent) > TRACKED:
            self._sent.popitem(last=False)
        return True


def install(sender: Any, gate: RetransmitGate | None = None) -> bool:
    """Gate aiortc ``sender``'s retransmissions; ``False`` (left as is) where this aiortc
    resends some other way."""
    resend: Callable[[int], Awaitable[None]] | None = getattr(sender, _SENDER_METHOD, None)
    if resend is None or not callable(resend):
        return False
    rule = gate or RetransmitGate()

    async def gated(sequence_number: int) -> None:
        if rule.allow(sequence_number, asyncio.get_running_loop().time()):
            await resend(sequence_number)

    setattr(sender, _SENDER_METHOD, gated)
    return True
