"""The fleet across machines: :class:`NatsFleet`, fed from a JetStream consumer.

It has the streams of :class:`~rxrealtime.Fleet` (plus ``generation_ended`` and
``commands``), with the same ``Keyed`` values and ``FleetTotals``, so operators apply::

    agg = await rt.nats.fleet(js, prices={"lucy-2.6": "0.01"}, budget_s=3600)
    agg.totals.pipe(ops.map(lambda t: t.billed_s), rto.budget_alert(limit_s=3000))

Totals come from :class:`~.ledger.FleetLedger` (a max per server session: duplicates and
redeliveries never count twice). With a ``durable`` name the aggregator checkpoints to
JetStream (see :mod:`._store`) and a restarted one ends with the same totals as one that
never stopped; with ``durable=None`` it is a viewer that replays the stream on start.
``budget_s``/``budget_cost`` turn on the fleet-wide budget guard (:mod:`.guard`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from .. import protocol as p
from ..billing import Rate, resolve_rate, to_decimal
from ..exceptions import ConfigError, ProtocolError, RealtimeError
from ..fleet import FleetTotals, Keyed
from ..states import ConnectionState
from ..streams import HotStream, StateStream
from ._pull import PullLoop
from ._store import Checkpoint, open_consumer
from .errors import RemoteError
from .frames import (
    EndedFrame,
    ErrorFrame,
    EventFrame,
    StateFrame,
    StopCommand,
    Subjects,
    TickFrame,
    decode_frame,
)
from .guard import BudgetGuard
from .ledger import Applied, FleetLedger, Member

__all__ = ["NatsFleet"]

logger = logging.getLogger(__name__)

S = ConnectionState


class NatsFleet:
    """A fleet's hot streams and totals, from JetStream; create it with :func:`fleet`."""

    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        stream: str,
        *,
        durable: str | None,
        rate_per_second: Rate | None,
        prices: Mapping[str, Rate] | None,
        budget_s: int | None,
        budget_cost: Rate | None,
        resend_s: float,
        checkpoint_interval_s: float,
        replicas: int = 1,
    ) -> None:
        if rate_per_second is not None and prices is not None:
            raise ConfigError("pass rate_per_second or prices, not both")
        self.nc, self.subjects, self.stream, self.durable = nc, subjects, stream, durable
        self._rate = resolve_rate(rate_per_second)
        self._prices = {m: to_decimal(r, f"price of {m}") for m, r in (prices or {}).items()}
        self._priced = self._rate is not None or prices is not None
        self.checkpoint_interval_s = checkpoint_interval_s
        self.replicas = replicas
        """Copies of the checkpoint bucket if this aggregator creates it."""
        self.ledger = FleetLedger()
        self.cost = Decimal(0)
        self.guard = BudgetGuard(
            nc,
            subjects,
            self.ledger,
            budget_s=budget_s,
            budget_cost=budget_cost,
            resend_s=resend_s,
            priced=self._priced,
            on_sent=self._on_sent,
        )
        names = ("frames", "duplicates", "malformed", "commands", "checkpoints")
        self.counters: dict[str, int] = dict.fromkeys(names, 0)
        self.states: HotStream[Keyed[ConnectionState]] = HotStream("nats_fleet.states")
        """Each session's first connection state, then each change (in the worker's
        order: a late state frame never takes a session back)."""
        self.ticks: HotStream[Keyed[p.GenerationTick]] = HotStream("nats_fleet.ticks")
        """Every billing tick of every session, once (redeliveries are dropped): cumulative
        seconds of its current server session."""
        self.billed: HotStream[Keyed[int]] = HotStream("nats_fleet.billed")
        """A session's billed seconds so far, across reconnects, after each of its ticks
        and ends."""
        self.billed_deltas: HotStream[Keyed[int]] = HotStream("nats_fleet.billed_deltas")
        """Seconds a frame added to the fleet's bill, when more than 0 (never for a
        duplicate or a late tick)."""
        self.errors: HotStream[Keyed[RealtimeError]] = HotStream("nats_fleet.errors")
        """Each session's errors as :class:`RemoteError`, and each malformed message as a
        ``ProtocolError`` (keyed by its subject's session token, model ``""``)."""
        self.generation_ended: HotStream[Keyed[p.GenerationEnded]] = HotStream(
            "nats_fleet.generation_ended"
        )
        """The server ended a session's generation after ``seconds``, for ``reason``."""
        self.commands: HotStream[StopCommand] = HotStream("nats_fleet.commands")
        """Every stop command this aggregator published."""
        self.totals: StateStream[FleetTotals] = StateStream("nats_fleet.totals", self._totals())
        """The fleet's totals, on every new session, billed second and change in the
        number generating; replays the current totals to each new subscriber."""
        self._unpriced: set[str] = set()
        self._price_cache: dict[str, Decimal] = {}
        self._ack_msg: Msg | None = None
        self._latest_msg: Msg | None = None
        self._checkpoint: Checkpoint | None = None
        self._pull: PullLoop | None = None
        self._consumer = ""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    @property
    def budget_s(self) -> int | None:
        """The fleet's budget in billed seconds (``None``: none); reaching it sends every
        worker a stop command for every session."""
        return self.guard.budget_s

    @property
    def budget_cost(self) -> Decimal | None:
        """The fleet's budget as a cost (``None``: none); reaching it sends every worker a
        stop command for every session."""
        return self.guard.budget_cost

    @property
    def budget_crossed_at(self) -> float | None:
        """Wall-clock time (``time.time()``) the budget was first found crossed."""
        return self.guard.crossed_at

    def __repr__(self) -> str:
        return (
            f"<NatsFleet {self.subjects.prefix} sessions={len(self.ledger.members)} "
            f"billed_s={self.ledger.total}>"
        )

    # -- reading ------------------------------------------------------------------------

    @property
    def members(self) -> list[Member]:
        """Every client session the fleet has heard of (or restored), disconnected ones
        included."""
        return list(self.ledger.members.values())

    @property
    def billed_by_session(self) -> dict[str, int]:
        """Billed seconds of each client session, across reconnects, by fleet key."""
        return self.ledger.billed_by_session

    @property
    def billed_by_server_session(self) -> dict[str, int]:
        """Billed seconds of each server session, by server session id."""
        return self.ledger.billed_by_server_session

    @property
    def total_billed_s(self) -> int:
        """Billed seconds of the whole fleet (a redelivered frame never counts twice)."""
        return self.ledger.total

    @property
    def pending(self) -> int | None:
        """Messages of the stream not yet delivered to this aggregator (0: caught up)."""
        msg = self._latest_msg
        return None if msg is None else msg.metadata.num_pending

    def price_of(self, model: str) -> Decimal | None:
        """The price of one billed second of ``model``, ``None`` when the fleet has no
        prices; a model the price table lacks costs 0 (with one warning in the log; unlike
        :meth:`rxrealtime.Fleet.price_of`, nothing is raised)."""
        if not self._priced:
            return None
        if model not in self._price_cache:
            if self._rate is not None:
                price = self._rate
            elif model in self._prices:
                price = self._prices[model]
            else:
                price = Decimal(0)
                if model not in self._unpriced:
                    self._unpriced.add(model)
                    logger.warning("fleet: no price for model %r: its seconds cost 0", model)
            self._price_cache[model] = price
        return self._price_cache[model]

    # -- commands -----------------------------------------------------------------------

    async def stop_session(self, key: str, reason: str = "stopped by the fleet") -> StopCommand:
        """Tell the worker running the session ``key`` to disconnect it."""
        member = self.ledger.by_key(key)
        if member is None:
            raise ConfigError(f"no session {key!r} in this fleet")
        return await self.guard.send(self.guard.command(reason, member))

    async def stop_all(self, reason: str = "stopped by the fleet") -> StopCommand:
        """Tell every worker to disconnect every session."""
        return await self.guard.send(self.guard.command(reason))

    def _on_sent(self, command: StopCommand, subject: str) -> None:
        self.counters["commands"] += 1
        self.commands.emit(command)

    # -- messages -----------------------------------------------------------------------

    def _on_message(self, msg: Msg) -> None:
        self._latest_msg = self._ack_msg = msg
        if self.subjects.is_control(msg.subject):
            return
        try:
            frame = decode_frame(msg.data)
        except ProtocolError as exc:
            self.counters["malformed"] += 1
            logger.warning("fleet: skipping a malformed message on %s: %s", msg.subject, exc)
            self.errors.emit(Keyed(self.subjects.key_token(msg.subject), "", exc))
            return
        self.counters["frames"] += 1
        self.apply(frame)

    def apply(self, frame: EventFrame) -> Applied:
        """Account for one frame and publish what it changed (the consumer calls this)."""
        applied = self.ledger.apply(frame)
        m = applied.member
        key, model = m.display_key, m.model
        if applied.duplicate:
            self.counters["duplicates"] += 1
        else:
            if isinstance(frame, TickFrame):
                self.ticks.emit(Keyed(key, model, p.GenerationTick(seconds=frame.seconds)))
            elif isinstance(frame, StateFrame):
                if applied.state_changed or applied.new_member:
                    self.states.emit(Keyed(key, model, frame.state))
                    if frame.state is S.DISCONNECTED and m.stop_sent_at is not None:
                        logger.warning(
                            "fleet: session %s on %s disconnected %.3f s after the stop command",
                            key,
                            m.worker,
                            frame.at - m.stop_sent_at,
                        )
            elif isinstance(frame, ErrorFrame):
                self.errors.emit(
                    Keyed(key, model, RemoteError(frame.type, frame.message, frame.worker))
                )
            else:
                self.generation_ended.emit(
                    Keyed(key, model, p.GenerationEnded(seconds=frame.seconds, reason=frame.reason))
                )
        delta = applied.delta
        if delta:
            price = self.price_of(model)
            if price is not None:
                self.cost += price * delta
            self.billed_deltas.emit(Keyed(key, model, delta))
        if isinstance(frame, (TickFrame, EndedFrame)) and (delta or not applied.duplicate):
            self.billed.emit(Keyed(key, model, m.total))
        if delta or applied.generating_change or applied.new_member:
            self._publish_totals()
        if self.guard.active:
            ticked = isinstance(frame, TickFrame) and not applied.duplicate
            self.guard.check(m, ticked, self._cost_or_none())
        return applied

    def _cost_or_none(self) -> Decimal | None:
        return self.cost if self._priced else None

    def _totals(self) -> FleetTotals:
        ledger = self.ledger
        return FleetTotals(
            billed_s=ledger.total,
            sessions=len(ledger.members),
            generating=ledger.generating,
            cost=self._cost_or_none(),
        )

    def _publish_totals(self) -> None:
        self.totals.emit(self._totals())

    # -- running ------------------------------------------------------------------------

    async def start_consuming(self, *, ack_wait_s: float, deliver_new: bool) -> None:
        """Load the checkpoint and start the consumer (:func:`rxrealtime.nats.fleet` calls
        this; a fleet built by hand must too)."""
        js = self.nc.jetstream()
        restored = False
        if self.durable is not None:
            bucket = f"{self.stream}_FLEET"
            self._checkpoint = await Checkpoint.open(
                js, bucket, self.durable, replicas=self.replicas
            )
            restored = await self._checkpoint.load(self.ledger)
            self._recount()
        self._consumer = self.durable or f"rxrealtime-view-{uuid.uuid4().hex[:12]}"
        how = await open_consumer(
            js,
            self.stream,
            self._consumer,
            self.subjects.events,
            durable=self.durable is not None,
            ack_wait_s=ack_wait_s,
            restored=restored,
            deliver_new=deliver_new,
        )
        logger.info(
            "fleet aggregator %s on %s: %d sessions restored, %s",
            self._consumer,
            self.stream,
            len(self.ledger.members),
            how,
        )
        self._pull = PullLoop(
            self.nc, self.stream, self._consumer, self._on_message, self._on_conflict
        )
        await self._pull.start()
        if self._checkpoint is not None:
            task = asyncio.get_running_loop().create_task(self._checkpoints())
            self._tasks.add(task)

    def _recount(self) -> None:
        self.cost = Decimal(0)
        for m in self.ledger.members.values():
            price = self.price_of(m.model)
            if price is not None:
                self.cost += price * m.total
        self._publish_totals()
        self.guard.restored(self._cost_or_none())

    async def _on_conflict(self, description: str) -> None:
        logger.warning("fleet aggregator %s: %s", self._consumer, description)
        if "deleted" in description.lower():
            js = self.nc.jetstream()
            await open_consumer(
                js,
                self.stream,
                self._consumer,
                self.subjects.events,
                durable=self.durable is not None,
                ack_wait_s=30.0,
                restored=True,
            )
        else:
            await asyncio.sleep(0.1)

    async def _checkpoints(self) -> None:
        while True:
            await asyncio.sleep(self.checkpoint_interval_s)
            try:
                await self.checkpoint()
            except Exception:  # unexpected: log, keep the loop (what changed stays dirty)
                logger.exception("fleet aggregator %s: checkpoint failed", self._consumer)

    async def checkpoint(self) -> bool:
        """Save what changed, then acknowledge what it covers; False if NATS refused."""
        if self._checkpoint is None:
            return True
        msg, dirty = self._ack_msg, self.ledger.dirty
        if msg is None and not dirty:
            return True
        self.ledger.dirty = set()
        records = {c: self.ledger.record(c) for c in dirty if c in self.ledger.members}
        try:
            await self._checkpoint.save(records, self.ledger)
            if msg is not None:
                await msg.ack()
        except Exception as exc:  # NATS away, a timeout...: all of it is saved next time
            self.ledger.dirty |= dirty
            logger.warning(
                "fleet aggregator %s: checkpoint failed (%s); retrying", self._consumer, exc
            )
            return False
        if self._ack_msg is msg:
            self._ack_msg = None
        self.counters["checkpoints"] += 1
        return True

    async def close(self) -> None:
        """Stop reading, save a last checkpoint, complete every stream."""
        if self._closed:
            return
        self._closed = True
        if self._pull is not None:
            await self._pull.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.guard.close()
        if self.nc.is_connected:
            await self.checkpoint()
        for stream in (
            self.states,
            self.ticks,
            self.billed,
            self.billed_deltas,
            self.generation_ended,
            self.commands,
            self.totals,
            self.errors,
        ):
            stream.complete()

    async def __aenter__(self) -> NatsFleet:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
