"""A fleet of sessions across processes and machines, over NATS JetStream.

Needs the ``nats`` extra (``pip install 'rxrealtime[nats]'``); ``import rxrealtime``
never imports it. Three roles, each a few lines (docs/fleets.md has the whole picture)::

    import rxrealtime.nats as rtn

    nc = await rtn.connect("nats://127.0.0.1:4222")         # clear error if unreachable

    # every worker: publish its sessions' events, obey stop commands
    publisher = await rtn.publish(session, nc, worker="gpu-box-1")
    obeyer = await rtn.obey(session, nc, publisher=publisher)

    # one aggregator: the same streams and totals as rt.Fleet, for the whole fleet
    agg = await rtn.fleet(nc.jetstream(), prices={"lucy-2.6": "0.01"}, budget_s=3600)
    agg.totals.subscribe(print)
"""

from __future__ import annotations

try:
    import nats as _nats  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError("rxrealtime.nats needs nats-py: pip install 'rxrealtime[nats]'") from exc

from .aggregator import NatsFleet
from .cluster import LocalNatsCluster, local_nats_cluster
from .connection import DEFAULT_URL, cluster_size, connect, ensure_stream
from .control import Obeyer, obey, send_stop
from .errors import FleetConnectError, FleetError, FleetPublishError, RemoteError
from .fleet_factory import fleet
from .frames import (
    EndedFrame,
    ErrorFrame,
    EventFrame,
    StateFrame,
    StopCommand,
    Subjects,
    TickFrame,
    decode_frame,
    encode_frame,
)
from .ledger import FleetLedger, Member
from .publisher import Publisher, publish
from .server import LocalNatsServer, NatsServerNotFound, find_nats_server, local_nats_server
from .sources import default_worker

__all__ = [
    "DEFAULT_URL",
    "EndedFrame",
    "ErrorFrame",
    "EventFrame",
    "FleetConnectError",
    "FleetError",
    "FleetLedger",
    "FleetPublishError",
    "LocalNatsCluster",
    "LocalNatsServer",
    "Member",
    "NatsFleet",
    "NatsServerNotFound",
    "Obeyer",
    "Publisher",
    "RemoteError",
    "StateFrame",
    "StopCommand",
    "Subjects",
    "TickFrame",
    "cluster_size",
    "connect",
    "decode_frame",
    "default_worker",
    "encode_frame",
    "ensure_stream",
    "find_nats_server",
    "fleet",
    "local_nats_cluster",
    "local_nats_server",
    "obey",
    "publish",
    "send_stop",
]
