"""Reaching NATS: :func:`connect` with a clear error, :func:`ensure_stream` for JetStream.

A fleet connection reconnects for ever once it is up (a worker buffers while NATS is
away, an aggregator waits), but its *first* connection is bounded: a wrong URL fails at
the call, within ``connect_timeout_s``, saying what was tried and what to check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext, api

from ..exceptions import ConfigError
from .errors import FleetConnectError
from .frames import Subjects

__all__ = [
    "DEFAULT_URL",
    "client_of",
    "cluster_size",
    "connect",
    "describe_url",
    "ensure_stream",
    "split_urls",
]

logger = logging.getLogger(__name__)

DEFAULT_URL = "nats://127.0.0.1:4222"
"""Where :func:`connect` looks for NATS by default: a local ``nats-server`` on its
standard port."""
SCHEMES = ("nats", "tls", "ws", "wss")


def describe_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    netloc = f"{user}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def check_url(url: str) -> str:
    if not isinstance(url, str):
        raise ConfigError(f"a NATS URL must be a string, got {type(url).__name__}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise ConfigError(f"invalid NATS URL {describe_url(url)!r}: {exc}") from None
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ConfigError(
            f"invalid NATS URL {describe_url(url)!r}: expected nats://HOST:PORT "
            f"(schemes: {', '.join(SCHEMES)})"
        )
    return url


def split_urls(urls: str | Sequence[str]) -> list[str]:
    """``"nats://a:1,nats://b:2"`` (or a list) as a checked list of URLs: the nodes of
    a cluster, any of which will do (the client moves to another when one is lost)."""
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    found = [u.strip() if isinstance(u, str) else u for u in items]
    found = [u for u in found if u != ""]
    if not found:
        raise ConfigError("no NATS URL given")
    return [check_url(u) for u in found]


def cluster_size(nc: Client) -> int:
    """How many servers the connected one says its cluster has (1 when it is alone).

    The server's INFO names its cluster and lists every node's client URL
    (``connect_urls``); nats-py offers the INFO only as ``_server_info``. Streams and
    the checkpoint bucket get this many replicas by default, at most 5 (JetStream's
    limit), so a fleet on a cluster survives the loss of a node without being told."""
    info: dict[str, Any] = getattr(nc, "_server_info", None) or {}
    if not info.get("cluster"):
        return 1
    return max(1, min(5, len(info.get("connect_urls") or []) or 1))


async def connect(
    url: str | Sequence[str] = DEFAULT_URL,
    *,
    name: str | None = None,
    connect_timeout_s: float = 2.0,
    reconnect_wait_s: float = 0.25,
    connect_attempts: int = 3,
    **options: Any,
) -> Client:
    """Connect to NATS; raises :class:`FleetConnectError` if it cannot within the timeout.

    ``url`` may list several servers (comma-separated, or a list): the nodes of a
    cluster; the client picks one and moves to another when it is lost.

    The first connection is tried ``connect_attempts`` times, ``reconnect_wait_s``
    apart, within ``connect_timeout_s`` in all. Once connected, the client reconnects
    for ever (every ``reconnect_wait_s``): a disconnection is logged, never raised.
    Other keyword options go to ``nats.connect``.
    """
    urls = split_urls(url)
    if connect_timeout_s <= 0:
        raise ConfigError("connect_timeout_s must be > 0")
    shown = ",".join(describe_url(u) for u in urls)
    last_error: list[BaseException] = []
    connected = asyncio.Event()

    async def on_error(error: Exception) -> None:
        last_error[:] = [error]
        if connected.is_set():
            logger.debug("NATS %s: %s", shown, error)

    async def on_disconnected() -> None:
        if connected.is_set() and not nc.is_closed:
            logger.warning("NATS %s: disconnected; reconnecting", shown)

    async def on_reconnected() -> None:
        logger.warning("NATS %s: reconnected", shown)

    nc = Client()
    settings: dict[str, Any] = {
        "servers": urls,
        "name": name,
        "connect_timeout": max(1, round(connect_timeout_s)),
        "reconnect_time_wait": reconnect_wait_s,
        # a few tries for the first connection (a refused one fails fast), then for ever
        "max_reconnect_attempts": connect_attempts,
        "error_cb": on_error,
        "disconnected_cb": on_disconnected,
        "reconnected_cb": on_reconnected,
        **options,
    }
    try:
        await asyncio.wait_for(nc.connect(**settings), connect_timeout_s)
    except (asyncio.TimeoutError, OSError, nats.errors.Error) as exc:
        await _abandon(nc)
        if last_error:
            detail = f"{type(last_error[0]).__name__}: {last_error[0]}"
        elif isinstance(exc, asyncio.TimeoutError):
            detail = f"no answer within {connect_timeout_s} s"
        else:
            detail = f"{type(exc).__name__}: {exc}"
        raise FleetConnectError(
            f"cannot connect to NATS at {shown} ({detail}); is nats-server running there? "
            f"(start one with `nats-server -js`)"
        ) from None
    nc.options["max_reconnect_attempts"] = options.get("max_reconnect_attempts", -1)
    connected.set()
    return nc


async def _abandon(nc: Client) -> None:
    try:
        await asyncio.wait_for(nc.close(), 1.0)
    except Exception:  # the connection never came up; nothing more to release
        logger.debug("closing an unconnected NATS client failed", exc_info=True)


def client_of(conn: Client | JetStreamContext) -> Client:
    """The NATS client behind a client or a JetStream context."""
    if isinstance(conn, Client):
        return conn
    if isinstance(conn, JetStreamContext):
        # nats-py keeps the context's client as ``_nc`` and offers no public accessor.
        client: Client = conn._nc
        return client
    raise ConfigError(f"expected a NATS client or JetStream context, got {type(conn).__name__}")


def check_replicas(replicas: int | None, nc: Client) -> int:
    """``replicas``, or the cluster's size when ``None``; ConfigError outside 1..5."""
    if replicas is None:
        return cluster_size(nc)
    if not 1 <= replicas <= 5:
        raise ConfigError(f"replicas must be 1 to 5 (JetStream's limit), got {replicas}")
    return replicas


def jetstream_unavailable(url: str, exc: BaseException) -> FleetConnectError:
    return FleetConnectError(
        f"JetStream does not answer on the NATS server at {url} ({type(exc).__name__}: "
        f"{exc}); start nats-server with -js (and -sd DIR to keep the store); on a "
        f"cluster, a stream electing a leader answers so for a few seconds"
    )


async def ensure_stream(
    js: JetStreamContext,
    subjects: Subjects | None = None,
    *,
    stream: str | None = None,
    max_age_s: float | None = None,
    duplicate_window_s: float = 120.0,
    timeout_s: float = 5.0,
    replicas: int | None = None,
) -> api.StreamInfo:
    """Create the fleet's stream (file storage, every ``<prefix>.>`` subject) if missing.

    An existing stream is kept as it is, except that the prefix's subjects are added to
    it if they are not covered. ``duplicate_window_s`` is how long JetStream remembers
    message ids, i.e. how late a republish is still dropped by the server.
    ``replicas`` (1 to 5) defaults to :func:`cluster_size`: 3 on a three-node cluster,
    so the stream outlives any one node; an existing stream keeps its own.
    """
    subjects = subjects or Subjects()
    name = stream or subjects.stream
    nc = client_of(js)
    replicas = check_replicas(replicas, nc)
    parsed = nc.connected_url
    url = describe_url(parsed.geturl()) if parsed is not None else "NATS"
    try:
        try:
            info = await asyncio.wait_for(js.stream_info(name), timeout_s)
        except nats.js.errors.NotFoundError:
            config = api.StreamConfig(
                name=name,
                subjects=[subjects.all],
                storage=api.StorageType.FILE,
                duplicate_window=duplicate_window_s,
                max_age=max_age_s,
                num_replicas=replicas,
                description="rxrealtime fleet events and commands",
            )
            info = await asyncio.wait_for(js.add_stream(config), timeout_s)
            logger.info(
                "created JetStream stream %s for %s (%d replicas)", name, subjects.all, replicas
            )
            return info
        covered = info.config.subjects or []
        if subjects.all not in covered and ">" not in covered:
            info.config.subjects = [*covered, subjects.all]
            info = await asyncio.wait_for(js.update_stream(info.config), timeout_s)
        return info
    except (asyncio.TimeoutError, nats.errors.NoRespondersError) as exc:
        raise jetstream_unavailable(url, exc) from None
    except nats.js.errors.ServiceUnavailableError as exc:
        raise jetstream_unavailable(url, exc) from None
    except nats.js.errors.APIError as exc:
        raise FleetConnectError(f"cannot set up stream {name} on {url}: {exc}") from None
