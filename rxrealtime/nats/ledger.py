"""The aggregator's state, pure: frames in, what changed out. No NATS, no streams.

Billing is idempotent by construction: each member (a client session) keeps, per server
session id, the largest cumulative ``seconds`` any frame carried. A duplicate, a
redelivery, a republish or a late out-of-order tick can only raise that maximum to a
value it already had, so it bills 0. The fleet total is the sum of those maxima.

Events (states, errors, ticks) are deduplicated by ``(client, seq)``
(:class:`SeenSeqs`), so a stream subscriber sees each event once even when JetStream
delivers it twice; billing does not depend on that dedup.

A member is saved as one :class:`MemberRecord` (JSON), which is what the aggregator's
checkpoint writes for each member that changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from ..states import ConnectionState
from .frames import EndedFrame, EventFrame, StateFrame, TickFrame

__all__ = ["Applied", "FleetLedger", "Member", "MemberRecord", "SeenSeqs"]

SEEN_LIMIT = 4096
"""Most out-of-order sequence numbers remembered above a member's contiguous floor."""


class SeenSeqs:
    """Which sequence numbers of one client were seen: all up to ``floor``, plus ``above``.

    Sequence numbers are dense (1, 2, 3...), so the floor advances and ``above`` stays
    small. A gap that never fills (an event the worker dropped) would grow ``above``; past
    :data:`SEEN_LIMIT` the floor jumps over the oldest gap, after which a frame from that
    gap counts as seen: its event is not republished on the streams, its billing still is.
    """

    __slots__ = ("above", "floor")

    def __init__(self, floor: int = 0, above: set[int] | None = None) -> None:
        self.floor = floor
        self.above: set[int] = above or set()

    def add(self, seq: int) -> bool:
        """Record ``seq``; True if it was not seen before."""
        if seq <= self.floor or seq in self.above:
            return False
        if seq == self.floor + 1:
            self.floor = seq
            above = self.above
            while self.floor + 1 in above:
                self.floor += 1
                above.discard(self.floor)
        else:
            self.above.add(seq)
            if len(self.above) > SEEN_LIMIT:
                self.floor = min(self.above)
                self.above.discard(self.floor)
                while self.floor + 1 in self.above:
                    self.floor += 1
                    self.above.discard(self.floor)
        return True


@dataclass(eq=False)
class Member:
    """One client session of the fleet, as the aggregator knows it."""

    client: str
    worker: str
    model: str
    key: str = ""
    state: ConnectionState = ConnectionState.DISCONNECTED
    state_seq: int = 0
    billed: dict[str, int] = field(default_factory=dict)
    """Largest cumulative seconds seen per server session id."""
    total: int = 0
    seen: SeenSeqs = field(default_factory=SeenSeqs)
    last_at: float = 0.0
    """The worker's clock at this member's latest event."""
    stop_sent_at: float | None = None
    """When the aggregator last told this session to stop (not saved)."""

    @property
    def display_key(self) -> str:
        """The fleet key: the first server session id, or ``pending-<client>`` before it."""
        return self.key or f"pending-{self.client}"


@dataclass(frozen=True, slots=True)
class Applied:
    """What one frame did."""

    member: Member
    new_member: bool
    duplicate: bool
    """The event was seen before (its billing was still applied: a max is idempotent)."""
    delta: int
    """Billed seconds this frame added to the fleet (0 for a duplicate or a late tick)."""
    state_changed: bool
    """A state frame newer than the member's state, with a different state."""
    generating_change: int
    """-1, 0 or +1: how the count of generating members moved."""


class MemberRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """A member as the checkpoint saves it."""

    client: str
    worker: str
    model: str
    key: str = ""
    state: ConnectionState = ConnectionState.DISCONNECTED
    state_seq: int = 0
    billed: dict[str, int] = {}
    seen_floor: int = 0
    seen_above: list[int] = []
    last_at: float = 0.0


_record_encoder = msgspec.json.Encoder()
_record_decoder = msgspec.json.Decoder(MemberRecord)


class FleetLedger:
    """Members by client id, the fleet's running totals, and who changed since a save."""

    def __init__(self) -> None:
        self.members: dict[str, Member] = {}
        self.total = 0
        self.generating = 0
        self.dirty: set[str] = set()

    def __repr__(self) -> str:
        return f"<FleetLedger members={len(self.members)} total={self.total}>"

    def apply(self, frame: EventFrame) -> Applied:
        """Account for one frame, in any order and any number of times; returns what it
        changed (a member seen for the first time is added)."""
        member = self.members.get(frame.client)
        new = member is None
        if member is None:
            member = self.members[frame.client] = Member(frame.client, frame.worker, frame.model)
        if frame.key and not member.key:
            member.key = frame.key
        duplicate = not member.seen.add(frame.seq)
        if frame.at > member.last_at:
            member.last_at = frame.at
        delta = 0
        state_changed = False
        generating_change = 0
        if frame.sid and frame.sid not in member.billed:
            # any frame names its server session: one that ends before its first tick
            # (a reconnect just before the worker stops) is still a server session the
            # servers list, at 0 s; without this the fleet never heard of it
            member.billed[frame.sid] = 0
        if isinstance(frame, (TickFrame, EndedFrame)):
            before = member.billed.get(frame.sid, 0)
            if frame.seconds > before or frame.sid not in member.billed:
                member.billed[frame.sid] = max(before, frame.seconds)
                delta = frame.seconds - before if frame.seconds > before else 0
                member.total += delta
                self.total += delta
        elif isinstance(frame, StateFrame) and frame.seq > member.state_seq:
            member.state_seq = frame.seq
            if frame.state is not member.state:
                was = member.state is ConnectionState.GENERATING
                now = frame.state is ConnectionState.GENERATING
                generating_change = int(now) - int(was)
                self.generating += generating_change
                member.state = frame.state
                state_changed = True
        if new or not duplicate or delta:
            self.dirty.add(frame.client)
        return Applied(member, new, duplicate, delta, state_changed, generating_change)

    # -- lookups -----------------------------------------------------------------------

    def by_key(self, key: str) -> Member | None:
        """The member whose fleet key (:attr:`Member.display_key`) is ``key``, if any."""
        for member in self.members.values():
            if member.display_key == key:
                return member
        return None

    @property
    def billed_by_session(self) -> dict[str, int]:
        """Billed seconds per fleet key (client session)."""
        return {m.display_key: m.total for m in self.members.values()}

    @property
    def billed_by_server_session(self) -> dict[str, int]:
        """Billed seconds per server session id, across the fleet."""
        return {sid: s for m in self.members.values() for sid, s in m.billed.items()}

    # -- saving ------------------------------------------------------------------------

    def record(self, client: str) -> bytes:
        """The member ``client`` as a JSON :class:`MemberRecord`, for the checkpoint
        (:meth:`restore` reads it back); raises ``KeyError`` for an unknown client."""
        m = self.members[client]
        return _record_encoder.encode(
            MemberRecord(
                client=m.client,
                worker=m.worker,
                model=m.model,
                key=m.key,
                state=m.state,
                state_seq=m.state_seq,
                billed=dict(m.billed),
                seen_floor=m.seen.floor,
                seen_above=sorted(m.seen.above),
                last_at=m.last_at,
            )
        )

    def restore(self, data: bytes) -> Member:
        """Add a saved member (raises ``msgspec.DecodeError`` on a corrupt record)."""
        r = _record_decoder.decode(data)
        old = self.members.pop(r.client, None)
        if old is not None:  # a record read twice: take it out of the totals first
            self.total -= old.total
            self.generating -= old.state is ConnectionState.GENERATING
        member = Member(
            r.client,
            r.worker,
            r.model,
            key=r.key,
            state=r.state,
            state_seq=r.state_seq,
            billed=dict(r.billed),
            total=sum(r.billed.values()),
            seen=SeenSeqs(r.seen_floor, set(r.seen_above)),
            last_at=r.last_at,
        )
        self.members[r.client] = member
        self.total += member.total
        self.generating += member.state is ConnectionState.GENERATING
        return member
