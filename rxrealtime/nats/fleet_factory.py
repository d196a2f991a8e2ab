"""``rxrealtime.nats.fleet(...)``: connect an aggregator to the fleet's JetStream stream."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext

from ..billing import Rate
from ..exceptions import ConfigError
from .aggregator import NatsFleet
from .connection import check_replicas, client_of, describe_url, ensure_stream
from .errors import FleetConnectError
from .frames import Subjects, check_token

__all__ = ["fleet"]


async def fleet(
    conn: JetStreamContext | Client,
    *,
    subject_prefix: str = "rxrealtime",
    stream: str | None = None,
    durable: str | None = "rxrealtime-fleet",
    rate_per_second: Rate | None = None,
    prices: Mapping[str, Rate] | None = None,
    budget_s: int | None = None,
    budget_cost: Rate | None = None,
    resend_s: float = 1.0,
    checkpoint_interval_s: float = 0.5,
    ack_wait_s: float = 30.0,
    deliver_new: bool = False,
    replicas: int | None = None,
) -> NatsFleet:
    """Aggregate the fleet published under ``subject_prefix``; see :class:`NatsFleet`.

    ``durable`` names the consumer and its checkpoint: one running aggregator per name
    (two would split the messages between them). ``durable=None`` reads the whole stream
    (or only what comes from now on, with ``deliver_new``) without saving anything.
    ``replicas`` (1 to 5) is for the stream and the checkpoint bucket if they are
    missing; by default the size of the cluster connected to (1 on a lone server).
    Raises :class:`FleetConnectError` if NATS or JetStream does not answer.
    """
    nc = client_of(conn)
    if nc.is_closed or not nc.is_connected:
        raise FleetConnectError("the NATS connection is not connected")
    subjects = Subjects(subject_prefix)
    if durable is not None:
        check_token(durable, "durable")
    if checkpoint_interval_s <= 0 or resend_s <= 0 or ack_wait_s <= checkpoint_interval_s:
        raise ConfigError("checkpoint_interval_s and resend_s must be > 0, ack_wait_s larger")
    name = stream or subjects.stream
    replicas = check_replicas(replicas, nc)
    agg = NatsFleet(
        nc,
        subjects,
        name,
        durable=durable,
        rate_per_second=rate_per_second,
        prices=prices,
        budget_s=budget_s,
        budget_cost=budget_cost,
        resend_s=resend_s,
        checkpoint_interval_s=checkpoint_interval_s,
        replicas=replicas,
    )
    js = nc.jetstream()
    await ensure_stream(js, subjects, stream=name, replicas=replicas)
    try:
        await agg.start_consuming(ack_wait_s=ack_wait_s, deliver_new=deliver_new)
    except (nats.errors.Error, asyncio.TimeoutError) as exc:
        await agg.close()
        url = describe_url(nc.connected_url.geturl()) if nc.connected_url else "NATS"
        raise FleetConnectError(f"cannot start the fleet aggregator on {url}: {exc}") from None
    return agg
