"""The publisher's outgoing buffer: events waiting for JetStream's ack. Pure, bounded.

Every event is kept, oldest first, until JetStream acknowledges it (a failed publish
leaves it in place, so order is kept and the retry carries the same message id). When
more than ``limit`` events wait (NATS unreachable for long), one is dropped per new
event, in this order, never the new one nor one that is being published right now:

1. a **superseded tick**: a tick of a server session whose newer tick is also waiting.
   Ticks are cumulative, so the newer one carries the billing: nothing is lost but
   an intermediate value;
2. the oldest **state or error** event;
3. the oldest event left (a server session's newest tick or its end): billing the fleet
   may then miss, unless a later tick of that server session arrives.

Every drop is counted per client (:class:`DropCounts`), so the publisher can report the
loss on the session's ``errors`` stream.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

__all__ = ["DropCounts", "OutBuffer", "Pending"]


@dataclass(slots=True)
class Pending:
    """One event waiting: already encoded, with its subject and message id."""

    id: int
    client: str
    subject: str
    payload: bytes
    msg_id: str
    slot: tuple[str, str] | None = None
    """(client, server session) for a tick or an end: the billing it carries."""
    is_tick: bool = False


@dataclass(slots=True)
class DropCounts:
    dropped: int = 0
    superseded: int = 0
    billing: int = 0

    def add(self, entry: Pending, superseded: bool) -> None:
        self.dropped += 1
        if superseded:
            self.superseded += 1
        elif entry.slot is not None:
            self.billing += 1


class OutBuffer:
    """Pending events by arrival; see the module docstring for the drop policy."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the buffer limit must be >= 1")
        self.limit = limit
        self._entries: OrderedDict[int, Pending] = OrderedDict()
        self._latest: dict[tuple[str, str], int] = {}  # slot -> id of its newest tick
        self._superseded: deque[int] = deque()
        self._others: deque[int] = deque()  # states and errors, oldest first
        self._inflight: set[int] = set()
        self._next_id = 0
        self.drops: dict[str, DropCounts] = {}
        """Drops per client since they were last taken (:meth:`take_drops`)."""
        self.dropped_total = 0

    def __len__(self) -> int:
        return len(self._entries)

    def push(
        self,
        client: str,
        subject: str,
        payload: bytes,
        msg_id: str,
        slot: tuple[str, str] | None = None,
        is_tick: bool = False,
    ) -> list[Pending]:
        """Add an event; returns what was dropped to make room (usually nothing)."""
        self._next_id += 1
        entry = Pending(self._next_id, client, subject, payload, msg_id, slot, is_tick)
        if is_tick and slot is not None:
            older = self._latest.get(slot)
            if older is not None:
                self._superseded.append(older)
            self._latest[slot] = entry.id
        elif slot is None:
            self._others.append(entry.id)
        self._entries[entry.id] = entry
        self._compact()
        dropped: list[Pending] = []
        while len(self._entries) > self.limit:
            victim = self._evict(keep=entry.id)
            if victim is None:
                break  # everything left is in flight
            dropped.append(victim)
        return dropped

    def take(self, n: int) -> list[Pending]:
        """The oldest ``n`` events not in flight; they are in flight until :meth:`settle`."""
        batch: list[Pending] = []
        for entry in self._entries.values():
            if entry.id not in self._inflight:
                batch.append(entry)
                if len(batch) >= n:
                    break
        self._inflight.update(e.id for e in batch)
        return batch

    def settle(self, entry: Pending, ok: bool) -> None:
        """A publish finished: acked events leave, failed ones stay in place for a retry."""
        self._inflight.discard(entry.id)
        if ok:
            self._remove(entry.id)

    def take_drops(self) -> dict[str, DropCounts]:
        drops, self.drops = self.drops, {}
        return drops

    def drop_all(self) -> list[Pending]:
        """Give up on everything still waiting (counted as drops)."""
        left = list(self._entries.values())
        for entry in left:
            self._count(entry, superseded=self._is_superseded(entry))
        self._entries.clear()
        self._latest.clear()
        self._superseded.clear()
        self._others.clear()
        self._inflight.clear()
        return left

    # -- internals -------------------------------------------------------------------

    def _is_superseded(self, entry: Pending) -> bool:
        return entry.is_tick and entry.slot is not None and self._latest.get(entry.slot) != entry.id

    def _evict(self, keep: int) -> Pending | None:
        """Drop one entry by the policy; never ``keep`` (the one just added) nor one in flight."""
        for queue, superseded in ((self._superseded, True), (self._others, False)):
            skipped: list[int] = []
            victim: Pending | None = None
            while queue:
                candidate = queue.popleft()
                if candidate not in self._entries:
                    continue  # already sent
                if candidate in self._inflight or candidate == keep:
                    skipped.append(candidate)
                    continue
                victim = self._entries[candidate]
                break
            queue.extendleft(reversed(skipped))
            if victim is not None:
                self._remove(victim.id)
                self._count(victim, superseded)
                return victim
        for entry in self._entries.values():
            if entry.id not in self._inflight and entry.id != keep:
                self._remove(entry.id)
                self._count(entry, superseded=False)
                return entry
        return None

    def _compact(self) -> None:
        # The queues drop ids lazily (an id leaves when it is evicted, not when it is
        # acked): rebuild them once they hold far more ids than there are entries.
        bound = 2 * len(self._entries) + 64
        if len(self._superseded) > bound:
            self._superseded = deque(i for i in self._superseded if i in self._entries)
        if len(self._others) > bound:
            self._others = deque(i for i in self._others if i in self._entries)

    def _remove(self, entry_id: int) -> None:
        entry = self._entries.pop(entry_id, None)
        if (
            entry is not None
            and entry.slot is not None
            and self._latest.get(entry.slot) == entry_id
        ):
            del self._latest[entry.slot]

    def _count(self, entry: Pending, superseded: bool) -> None:
        self.dropped_total += 1
        self.drops.setdefault(entry.client, DropCounts()).add(entry, superseded)
