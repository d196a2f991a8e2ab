"""The worker side: a session's ticks, states, errors and ends, published to JetStream.

:class:`Publisher` subscribes to each session it is given and turns every event into a
frame (:mod:`.frames`) in its :class:`~.buffer.OutBuffer`; one task sends the buffer to
JetStream in pipelined batches and removes what JetStream acknowledged. A session never
waits for NATS: while NATS is away events stay buffered (bounded, see the buffer's drop
policy) and go out, with the same message ids, once it is back. Events that had to be
dropped are reported on the session's ``errors`` as a :class:`FleetPublishError`
(at most once a second per session, while NATS is still unreachable too, and when the
buffer drains) and counted in :attr:`Publisher.dropped`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from reactivex.disposable import CompositeDisposable

from ..exceptions import ConfigError
from .buffer import DropCounts, OutBuffer, Pending
from .connection import client_of, ensure_stream
from .errors import FleetConnectError, FleetPublishError
from .frames import (
    EndedFrame,
    ErrorFrame,
    EventFrame,
    StateFrame,
    Subjects,
    TickFrame,
    check_token,
    encode_frame,
    msg_id,
    new_client_id,
)
from .sources import PublishSource, SessionKey, default_worker, model_of

__all__ = ["PublishSource", "Publisher", "SessionKey", "default_worker", "publish"]

logger = logging.getLogger(__name__)

REPORT_EVERY_S = 1.0


class _Tracked:
    def __init__(self, session: PublishSource, key: str | None) -> None:
        self.session = session
        self.client = new_client_id()
        self.keys = SessionKey(session, key)
        self.model = model_of(session)
        self.seq = 0
        self.subscriptions = CompositeDisposable(self.keys)
        self.last_report = 0.0
        self.pending_drops = DropCounts()


class Publisher:
    """Publishes the events of sessions to ``<prefix>.<worker>.<key>.<kind>``.

    Create it with :func:`publish` (which also checks JetStream), add sessions with
    :meth:`add`, and :meth:`close` it (it flushes first). ``max_buffer`` bounds the
    events waiting for NATS; ``batch`` is how many are published before waiting for
    their acks; ``ack_timeout_s`` is how long an ack may take before the event is sent
    again (same message id: JetStream drops the duplicate). ``replicas`` is for the
    stream if the publisher creates it (default: the cluster's size, see
    :func:`.ensure_stream`).
    """

    def __init__(
        self,
        nc: Client,
        *,
        worker: str | None = None,
        subject_prefix: str = "rxrealtime",
        stream: str | None = None,
        max_buffer: int = 50_000,
        batch: int = 256,
        ack_timeout_s: float = 2.0,
        replicas: int | None = None,
    ) -> None:
        self.nc = client_of(nc)
        self.replicas = replicas
        self.worker = check_token(worker or default_worker(), "worker")
        self.subjects = Subjects(subject_prefix)
        self.stream = stream or self.subjects.stream
        if max_buffer < 1 or batch < 1 or ack_timeout_s <= 0:
            raise ConfigError("max_buffer and batch must be >= 1, ack_timeout_s > 0")
        self.batch, self.ack_timeout_s = batch, ack_timeout_s
        self._js = self.nc.jetstream()
        self._buffer = OutBuffer(max_buffer)
        self._tracked: dict[int, _Tracked] = {}
        self._by_client: dict[str, _Tracked] = {}
        self.published = 0
        """Events JetStream acknowledged (republished duplicates included once)."""
        self.failed_attempts = 0
        self._owed: set[str] = set()
        self.stream_ready = False
        self._closing = False
        self._closed = False
        self._warned = False
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def __repr__(self) -> str:
        return (
            f"<Publisher worker={self.worker!r} sessions={len(self._tracked)} "
            f"buffered={len(self._buffer)} published={self.published}>"
        )

    # -- sessions ----------------------------------------------------------------------

    def add(self, session: PublishSource, key: str | None = None) -> str:
        """Publish ``session``'s events; returns the client id its frames carry."""
        if self._closing:
            raise ConfigError("this publisher is closed")
        if key is not None:
            check_token(key, "key")
        found = self._tracked.get(id(session))
        if found is not None:
            return found.client
        t = _Tracked(session, key)
        self._tracked[id(session)] = t
        self._by_client[t.client] = t
        subs = t.subscriptions
        subs.add(session.connection_changes.subscribe(lambda s: self._emit(t, StateFrame, state=s)))
        subs.add(
            session.generation_ticks.subscribe(
                lambda tick: self._emit(t, TickFrame, seconds=tick.seconds)
            )
        )
        subs.add(
            session.generation_ended.subscribe(
                lambda e: self._emit(t, EndedFrame, seconds=e.seconds, reason=e.reason)
            )
        )
        subs.add(
            session.errors.subscribe(
                lambda e: self._emit(t, ErrorFrame, type=type(e).__name__, message=str(e)),
                on_completed=lambda: self._detach(t),
            )
        )
        return t.client

    def remove(self, session: PublishSource) -> None:
        """Stop publishing ``session``'s events (those already buffered still go out)."""
        t = self._tracked.get(id(session))
        if t is not None:
            self._detach(t)

    def key_of(self, session: PublishSource) -> str | None:
        """The fleet key of ``session`` (``None`` before its first server session)."""
        t = self._tracked.get(id(session))
        return (t.keys.key or None) if t is not None else None

    @property
    def sessions(self) -> list[PublishSource]:
        """The sessions whose events are published now (one that closed or was removed
        has left)."""
        return [t.session for t in self._tracked.values()]

    @property
    def buffered(self) -> int:
        """Events waiting for JetStream's ack."""
        return len(self._buffer)

    @property
    def dropped(self) -> int:
        """Events dropped because the buffer was full (or NATS was down at close)."""
        return self._buffer.dropped_total

    # -- flushing and closing --------------------------------------------------------

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every buffered event is acknowledged; False on timeout."""
        if not len(self._buffer):
            return True
        self._drained.clear()
        self._wake.set()
        try:
            await asyncio.wait_for(self._drained.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return True

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop watching, publish what is buffered (for up to ``timeout_s``), stop.

        Events still unpublished then are dropped, counted and reported.
        """
        if self._closed:
            return
        self._closed = self._closing = True
        for t in list(self._tracked.values()):
            t.subscriptions.dispose()
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except asyncio.TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if len(self._buffer):
            left = self._buffer.drop_all()
            logger.error(
                "fleet publisher %s: NATS unreachable at close, %d events dropped",
                self.worker,
                len(left),
            )
        self._report_drops(force=True)
        self._tracked.clear()

    async def __aenter__(self) -> Publisher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- events -> buffer --------------------------------------------------------------

    def _emit(self, t: _Tracked, kind: type[EventFrame], **fields: Any) -> None:
        t.seq += 1
        keys = t.keys
        frame = kind(
            worker=self.worker,
            client=t.client,
            key=keys.key,
            sid=keys.sid,
            model=t.model,
            seq=t.seq,
            at=time.time(),
            **fields,
        )
        billing = kind is TickFrame or kind is EndedFrame
        dropped = self._buffer.push(
            t.client,
            self.subjects.event(frame),
            encode_frame(frame),
            msg_id(frame),
            slot=(t.client, keys.sid) if billing else None,
            is_tick=kind is TickFrame,
        )
        if dropped and not self._warned:
            self._warned = True
            logger.warning(
                "fleet publisher %s: %d events wait for NATS (limit); dropping the least "
                "useful (superseded ticks first)",
                self.worker,
                len(self._buffer),
            )
        self._wake.set()

    def _detach(self, t: _Tracked) -> None:
        t.subscriptions.dispose()
        self._tracked.pop(id(t.session), None)
        if t.client not in self._owed:
            self._by_client.pop(t.client, None)

    def _report_drops(self, force: bool = False) -> None:
        """Tell each session whose events were dropped, at most once a second (or now)."""
        for client, counts in self._buffer.take_drops().items():
            t = self._by_client.get(client)
            if t is None:  # the session is gone: the log is all that can hear of it
                logger.warning(
                    "fleet publisher %s: %d events of a closed session dropped",
                    self.worker,
                    counts.dropped,
                )
                continue
            owed = t.pending_drops
            owed.dropped += counts.dropped
            owed.superseded += counts.superseded
            owed.billing += counts.billing
            self._owed.add(client)
        now = time.monotonic()
        for client in list(self._owed):
            t = self._by_client.get(client)
            if t is None:
                self._owed.discard(client)
                continue
            if not force and now - t.last_report < REPORT_EVERY_S:
                continue
            self._owed.discard(client)
            owed, t.pending_drops, t.last_report = t.pending_drops, DropCounts(), now
            error = FleetPublishError(
                f"fleet publisher {self.worker}: {owed.dropped} events of this session were "
                f"dropped while NATS was unreachable ({owed.superseded} superseded ticks, "
                f"billing intact; {owed.billing} billing events the fleet may miss)",
                dropped=owed.dropped,
                superseded=owed.superseded,
                billing=owed.billing,
            )
            logger.warning("%s", error)
            emit = getattr(t.session.errors, "emit", None)
            if emit is not None:
                emit(error)

    # -- buffer -> JetStream -------------------------------------------------------------

    async def ensure_stream(self, timeout_s: float = 5.0) -> None:
        """Create the fleet's JetStream stream if it is missing (:func:`.ensure_stream`);
        raises :class:`FleetConnectError` if JetStream does not answer within
        ``timeout_s``. The sender calls it by itself, again whenever JetStream says the
        stream is gone, which is also what a stream electing a leader says (no
        responders): then a request lost in the election is tried again after
        ``ack_timeout_s``, not 5 s (the lag a stop of the budget guard waits out)."""
        await ensure_stream(
            self._js,
            self.subjects,
            stream=self.stream,
            replicas=self.replicas,
            timeout_s=timeout_s,
        )
        self.stream_ready = True

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            if not len(self._buffer):
                if self._owed or self._buffer.drops:
                    self._report_drops(force=True)
                self._warned = False
                self._drained.set()
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self.nc.is_connected:
                if self.nc.is_closed:
                    logger.error("fleet publisher %s: the NATS connection is closed", self.worker)
                    self._buffer.drop_all()
                    continue
                if self._owed or self._buffer.drops:
                    self._report_drops()  # an outage may last: say so while it does
                await asyncio.sleep(0.05)
                continue
            if not self.stream_ready:
                try:
                    await self.ensure_stream(timeout_s=self.ack_timeout_s)
                except Exception as exc:  # FleetConnectError, or the connection closing
                    logger.warning("fleet publisher %s: %s", self.worker, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(1.0, backoff * 2)
                    continue
            batch = self._buffer.take(self.batch)
            try:
                sent = await self._send(batch)
            except Exception:  # never let the sender die: the events stay buffered
                logger.exception("fleet publisher %s: publishing failed", self.worker)
                for entry in batch:
                    self._buffer.settle(entry, ok=False)
                sent = False
            if sent:
                backoff = 0.05
                if self._owed or self._buffer.drops:
                    self._report_drops()
            else:
                self.failed_attempts += 1
                if self._owed or self._buffer.drops:
                    self._report_drops()  # connected, yet JetStream does not store
                await asyncio.sleep(backoff)
                backoff = min(1.0, backoff * 2)

    async def _send(self, batch: list[Pending]) -> bool:
        """Publish a batch, pipelined; settle each event by its ack. True if all were acked."""
        waits: list[Any] = []
        for entry in batch:
            try:
                future = await self._js.publish_async(
                    entry.subject, entry.payload, headers={"Nats-Msg-Id": entry.msg_id}
                )
            except Exception as exc:  # disconnected mid-batch, stalled, ...
                waits.append(_failed(exc))
                continue
            waits.append(asyncio.wait_for(future, self.ack_timeout_s))
        results = await asyncio.gather(*waits, return_exceptions=True)
        all_ok = True
        for entry, result in zip(batch, results, strict=True):
            ok = not isinstance(result, BaseException)
            self._buffer.settle(entry, ok)
            if ok:
                self.published += 1
                continue
            all_ok = False
            if isinstance(
                result, (nats.js.errors.NoStreamResponseError, nats.errors.NoRespondersError)
            ):
                self.stream_ready = False
        if not all_ok:
            logger.debug("fleet publisher %s: some publishes were not acknowledged", self.worker)
        return all_ok


async def _failed(exc: BaseException) -> None:
    raise exc


async def publish(
    sessions: PublishSource | Iterable[PublishSource],
    nc: Client,
    *,
    subject_prefix: str = "rxrealtime",
    worker: str | None = None,
    key: str | None = None,
    stream: str | None = None,
    max_buffer: int = 50_000,
    replicas: int | None = None,
) -> Publisher:
    """Publish the events of one session (or several) to the fleet's JetStream stream.

    Checks JetStream now if NATS is connected (:class:`FleetConnectError` if it does not
    answer, e.g. a server started without ``-js``); if NATS is away, the sessions run
    and their events wait in the buffer. ``worker`` defaults to ``<host>-<pid>``;
    ``key`` (one session only) replaces the first server session id as its fleet key;
    ``replicas`` is for the stream if it is missing (default: the cluster's size).
    Returns the :class:`Publisher`; ``await publisher.close()`` flushes and stops it.
    """
    nc = client_of(nc)
    if nc.is_closed:
        raise FleetConnectError("the NATS connection is closed")
    publisher = Publisher(
        nc,
        worker=worker,
        subject_prefix=subject_prefix,
        stream=stream,
        max_buffer=max_buffer,
        replicas=replicas,
    )
    many = not hasattr(sessions, "generation_ticks")
    if many and key is not None:
        raise ConfigError("key= names one session; publish several without it")
    try:
        if nc.is_connected:
            await publisher.ensure_stream()
    except BaseException:
        await publisher.close(timeout_s=0)
        raise
    for session in sessions if many else [sessions]:  # type: ignore[union-attr]
        publisher.add(session, key)  # type: ignore[arg-type]
    return publisher
