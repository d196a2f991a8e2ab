"""Where an aggregator keeps its place: the durable consumer and the checkpoint.

The checkpoint is a JetStream key-value bucket (``<STREAM>_FLEET``), one key per member
(``<durable>.m.<client>``: its :class:`~.ledger.MemberRecord`) plus ``<durable>.meta``.
Every ``checkpoint_interval_s`` the aggregator writes the members that changed and only
then acknowledges (ack-all) the last message they include. After a crash, the members
come back from the bucket and the consumer delivers again what was not acknowledged;
since billing is a max per server session, what is applied twice counts once.

A restart does not wait for JetStream's ack timeout: a durable consumer with messages
still unacknowledged is recreated from its ack floor, so they come again at once.
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
import nats.js.errors
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from .ledger import FleetLedger

__all__ = ["Checkpoint", "consumer_config", "open_consumer"]

logger = logging.getLogger(__name__)


class _Meta(msgspec.Struct, frozen=True):
    version: int
    saved_at: float
    total: int
    members: int


def consumer_config(
    name: str,
    filter_subject: str,
    *,
    durable: bool,
    ack_wait_s: float,
    start_seq: int | None = None,
    deliver_new: bool = False,
) -> api.ConsumerConfig:
    if start_seq:
        policy, opt = api.DeliverPolicy.BY_START_SEQUENCE, start_seq
    else:
        policy, opt = (api.DeliverPolicy.NEW if deliver_new else api.DeliverPolicy.ALL), None
    return api.ConsumerConfig(
        name=name,
        durable_name=name if durable else None,
        deliver_policy=policy,
        opt_start_seq=opt,
        ack_policy=api.AckPolicy.ALL if durable else api.AckPolicy.NONE,
        ack_wait=ack_wait_s if durable else None,
        max_ack_pending=-1 if durable else None,
        max_deliver=-1 if durable else None,
        filter_subject=filter_subject,
        inactive_threshold=None if durable else 60.0,
        description="rxrealtime fleet aggregator",
    )


async def open_consumer(
    js: JetStreamContext,
    stream: str,
    name: str,
    filter_subject: str,
    *,
    durable: bool,
    ack_wait_s: float,
    restored: bool,
    deliver_new: bool = False,
) -> str:
    """Create or resume the consumer; returns how it started (for the log)."""
    if not durable:
        config = consumer_config(
            name, filter_subject, durable=False, ack_wait_s=ack_wait_s, deliver_new=deliver_new
        )
        await js.add_consumer(stream, config)
        return "new" if deliver_new else "replaying the stream"
    try:
        info = await js.consumer_info(stream, name)
    except nats.js.errors.NotFoundError:
        info = None
    if info is not None and not restored:
        # The consumer moved on but its checkpoint is gone: replay the stream from the
        # start, or the totals would miss everything it had acknowledged.
        logger.warning("fleet durable %s has no checkpoint: replaying the stream", name)
        await js.delete_consumer(stream, name)
        info = None
    start: int | None = None
    how = "from the start of the stream"
    if info is not None:
        pending = info.num_ack_pending or 0
        if not pending:
            return f"resumed at stream seq {info.ack_floor.stream_seq if info.ack_floor else 0}"
        start = (info.ack_floor.stream_seq if info.ack_floor else 0) + 1
        await js.delete_consumer(stream, name)
        how = f"resumed from stream seq {start} ({pending} unacknowledged messages again)"
    config = consumer_config(
        name, filter_subject, durable=True, ack_wait_s=ack_wait_s, start_seq=start
    )
    await js.add_consumer(stream, config)
    return how


class Checkpoint:
    """The members of one durable aggregator, saved in a key-value bucket."""

    VERSION = 1

    def __init__(self, kv: KeyValue, durable: str) -> None:
        self.kv, self.durable = kv, durable
        self.saves = 0

    @classmethod
    async def open(
        cls, js: JetStreamContext, bucket: str, durable: str, *, replicas: int = 1
    ) -> Checkpoint:
        """Open the bucket, creating it with ``replicas`` copies (3 on a three-node
        cluster: a checkpoint on one node would be lost with it)."""
        try:
            kv = await js.key_value(bucket)
        except nats.js.errors.BucketNotFoundError:
            config = api.KeyValueConfig(
                bucket=bucket,
                history=1,
                replicas=replicas,
                storage=api.StorageType.FILE,
                description="rxrealtime fleet checkpoints",
            )
            kv = await js.create_key_value(config)
        return cls(kv, durable)

    async def load(self, ledger: FleetLedger) -> bool:
        """Restore every saved member into ``ledger``; True if a checkpoint existed."""
        found = False
        watcher = await self.kv.watch(f"{self.durable}.>")
        try:
            while True:
                entry = await watcher.updates(timeout=5.0)  # type: ignore[no-untyped-call]
                if entry is None:
                    break
                if entry.value is None or entry.key is None:
                    continue
                if entry.key == f"{self.durable}.meta":
                    found = True
                    continue
                try:
                    ledger.restore(entry.value)
                except msgspec.DecodeError as exc:
                    logger.error(
                        "fleet checkpoint %s: corrupt record %s: %s", self.durable, entry.key, exc
                    )
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
        ledger.dirty.clear()
        return found

    async def save(self, records: dict[str, bytes], ledger: FleetLedger) -> None:
        """Write changed members (client -> record), then the meta key."""
        items = list(records.items())
        for start in range(0, len(items), 256):
            chunk = items[start : start + 256]
            await asyncio.gather(*(self.kv.put(f"{self.durable}.m.{c}", r) for c, r in chunk))
        meta = _Meta(self.VERSION, time.time(), ledger.total, len(ledger.members))
        await self.kv.put(f"{self.durable}.meta", msgspec.json.encode(meta))
        self.saves += 1
