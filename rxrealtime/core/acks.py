"""The book of requests waiting for an acknowledgement: pure bookkeeping, no futures.

The protocol matches a ``prompt_ack`` to its request by prompt text and a
``set_image_ack`` by order, and neither carries an id. So the book keeps, per kind and
text, the open requests oldest first; an ack settles the oldest open request it can
match, and an ack that matches nothing (it came after its request timed out) settles
nothing. The session core owns one book; the shell maps each request number to the
future its caller awaits.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

__all__ = ["AckBook", "PendingAck"]

AckKind = Literal["prompt", "image"]


@dataclass(frozen=True, slots=True)
class PendingAck:
    """One request on the book.

    ``remember`` is what the session should restore after a reconnect once this request
    succeeds (the prompt and its enhance flag, or the image data), or ``None``.
    """

    id: int
    kind: AckKind
    key: str | None
    what: str
    remember: object = None


class AckBook:
    """Open requests by kind and key, oldest first."""

    __slots__ = ("_by_id", "_next_id", "_queues")

    def __init__(self) -> None:
        self._next_id = 0
        self._by_id: dict[int, PendingAck] = {}
        self._queues: dict[tuple[AckKind, str | None], deque[int]] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def open(
        self, kind: AckKind, key: str | None, what: str, remember: object = None
    ) -> PendingAck:
        """Put a new request on the book; its ``id`` names it from now on."""
        self._next_id += 1
        ack = PendingAck(self._next_id, kind, key, what, remember)
        self._by_id[ack.id] = ack
        self._queues.setdefault((kind, key), deque()).append(ack.id)
        return ack

    def settle(self, kind: AckKind, key: str | None) -> PendingAck | None:
        """The oldest open request an ack of ``kind``/``key`` answers, taken off the book."""
        queue = self._queues.get((kind, key))
        while queue:
            ack = self._by_id.pop(queue.popleft(), None)
            if not queue:
                del self._queues[(kind, key)]
            if ack is not None:
                return ack
        return None

    def drop(self, ack_id: int) -> PendingAck | None:
        """Take one request off the book (it timed out or its caller gave up)."""
        ack = self._by_id.pop(ack_id, None)
        if ack is not None:
            queue = self._queues.get((ack.kind, ack.key))
            if queue is not None:
                queue.remove(ack_id)
                if not queue:
                    del self._queues[(ack.kind, ack.key)]
        return ack

    def drop_all(self) -> list[PendingAck]:
        """Every open request, oldest first, taken off the book (their link is gone)."""
        acks = sorted(self._by_id.values(), key=lambda a: a.id)
        self._by_id.clear()
        self._queues.clear()
        return acks
