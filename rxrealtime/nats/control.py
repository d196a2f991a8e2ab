"""Stop commands: the aggregator (or an operator) tells workers to disconnect sessions.

A worker runs :func:`obey` for its sessions; it listens on
``<prefix>.control.<worker>.*`` (one session, named by its fleet key) and
``<prefix>.control.fleet`` (every session). A command that names a live session is
published on :attr:`Obeyer.commands` and logged, the session is disconnected, and the
disconnect is published on :attr:`Obeyer.stopped` (and logged with how long it took).
The session's own ``disconnected`` state reaches the fleet through its publisher.

Commands are JSON (:class:`~.frames.StopCommand`); an empty payload is a bare stop, so
``nats pub rxrealtime.control.fleet ''`` stops a whole fleet by hand.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ..exceptions import ConfigError, ProtocolError
from ..fleet import Keyed
from ..streams import HotStream
from .connection import client_of
from .frames import (
    StopCommand,
    Subjects,
    check_token,
    decode_command,
    encode_command,
    subject_token,
)
from .publisher import Publisher
from .sources import PublishSource, SessionKey, default_worker, model_of

__all__ = ["Obeyer", "obey", "send_stop"]

logger = logging.getLogger(__name__)


async def send_stop(nc: Client, subjects: Subjects, command: StopCommand) -> str:
    """Publish ``command`` to its subject (fleet-wide or one session); returns the subject.

    A plain NATS publish: it reaches every worker listening now, and the fleet's stream
    (whose subjects cover ``<prefix>.>``) keeps it as a record.
    """
    if command.fleet_wide:
        subject = subjects.control_fleet
    elif command.worker != "*" and command.key != "*":
        subject = subjects.control(command.worker, command.key)
    else:
        raise ConfigError("a stop command names one session (worker and key) or every one")
    await client_of(nc).publish(subject, encode_command(command))
    return subject


class _Watched:
    def __init__(self, session: PublishSource, keys: SessionKey, publisher: Publisher | None):
        self.session = session
        self.keys = keys
        self.publisher = publisher
        self.model = model_of(session)
        self.stopping: asyncio.Task[None] | None = None

    @property
    def key(self) -> str | None:
        published = self.publisher.key_of(self.session) if self.publisher is not None else None
        return published or self.keys.key or None


class Obeyer:
    """Disconnects this worker's sessions when a stop command names them.

    Streams: ``commands`` (each :class:`StopCommand` that named at least one live
    session here, once per command) and ``stopped`` (``Keyed(key, model, command)``
    once the named session has disconnected). ``malformed`` counts undecodable commands.
    """

    def __init__(
        self,
        nc: Client,
        *,
        worker: str,
        subject_prefix: str = "rxrealtime",
        publisher: Publisher | None = None,
    ) -> None:
        self.nc = client_of(nc)
        self.worker = check_token(worker, "worker")
        self.subjects = Subjects(subject_prefix)
        self.publisher = publisher
        self.commands: HotStream[StopCommand] = HotStream("obey.commands")
        """Each stop command that named at least one live session here, once per command,
        as it arrives (before the disconnects)."""
        self.stopped: HotStream[Keyed[StopCommand]] = HotStream("obey.stopped")
        """``Keyed(key, model, command)`` once a session named by ``command`` has
        disconnected (the key is ``pending`` if it had none yet)."""
        self.malformed = 0
        self._watched: dict[int, _Watched] = {}
        self._subscriptions: list[Subscription] = []

    def __repr__(self) -> str:
        return f"<Obeyer worker={self.worker!r} sessions={len(self._watched)}>"

    async def start(self) -> Obeyer:
        """Listen on the fleet-wide control subject and this worker's; returns ``self``.

        :func:`obey` calls it; commands sent before it are not seen.
        """
        for subject in (self.subjects.control_fleet, self.subjects.control_of(self.worker)):
            self._subscriptions.append(await self.nc.subscribe(subject, cb=self._on_message))
        return self

    def add(self, session: PublishSource, key: str | None = None) -> None:
        """Obey commands naming ``session`` (by the key its publisher gives it, if any)."""
        if id(session) in self._watched:
            return
        self._watched[id(session)] = _Watched(session, SessionKey(session, key), self.publisher)

    def remove(self, session: PublishSource) -> None:
        """Stop obeying commands for ``session``; a disconnect already under way goes on."""
        watched = self._watched.pop(id(session), None)
        if watched is not None:
            watched.keys.dispose()

    async def close(self) -> None:
        """Stop listening; disconnects already under way are awaited."""
        for subscription in self._subscriptions:
            try:
                await subscription.unsubscribe()
            except Exception:  # the connection is closed: nothing left to undo
                logger.debug("unsubscribing a control subscription failed", exc_info=True)
        self._subscriptions.clear()
        tasks = [w.stopping for w in self._watched.values() if w.stopping is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        for session in [w.session for w in self._watched.values()]:
            self.remove(session)
        self.commands.complete()
        self.stopped.complete()

    async def __aenter__(self) -> Obeyer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- commands ----------------------------------------------------------------------

    async def _on_message(self, msg: Msg) -> None:
        try:
            command = decode_command(msg.data)
        except ProtocolError as exc:
            self.malformed += 1
            logger.warning(
                "worker %s: ignoring a malformed stop command on %s: %s",
                self.worker,
                msg.subject,
                exc,
            )
            return
        target = None if msg.subject == self.subjects.control_fleet else msg.subject.split(".")[-1]
        hit = [w for w in self._watched.values() if self._named(w, target)]
        if not hit:
            return
        self.commands.emit(command)
        for watched in hit:
            logger.warning(
                "worker %s: stop command %s (%s): disconnecting session %s",
                self.worker,
                command.id or "-",
                command.reason,
                watched.key or "(connecting)",
            )
            watched.stopping = asyncio.ensure_future(self._stop(watched, command))

    @staticmethod
    def _named(watched: _Watched, target: str | None) -> bool:
        if watched.stopping is not None or not _alive(watched.session):
            return False
        key = watched.key
        return target is None or (key is not None and subject_token(key) == target)

    async def _stop(self, watched: _Watched, command: StopCommand) -> None:
        started = time.monotonic()
        disconnect = getattr(watched.session, "disconnect", None)
        if disconnect is not None:
            await disconnect()
        key = watched.key or "pending"
        logger.warning(
            "worker %s: session %s disconnected by stop command %s in %.3f s",
            self.worker,
            key,
            command.id or "-",
            time.monotonic() - started,
        )
        self.stopped.emit(Keyed(key, watched.model, command))


def _alive(session: Any) -> bool:
    return not getattr(session, "closed", False)


async def obey(
    sessions: PublishSource | Iterable[PublishSource],
    nc: Client,
    *,
    worker: str | None = None,
    subject_prefix: str = "rxrealtime",
    publisher: Publisher | None = None,
) -> Obeyer:
    """Disconnect these sessions when a stop command names them (or the whole fleet).

    Pass the ``publisher`` that publishes them, so both agree on worker and keys;
    without one, ``worker`` defaults to ``<host>-<pid>`` and keys are the sessions'
    first server session ids, as the publisher would give them.
    """
    if publisher is not None:
        if worker is not None and worker != publisher.worker:
            raise ConfigError(f"worker {worker!r} is not the publisher's ({publisher.worker!r})")
        worker, subject_prefix = publisher.worker, publisher.subjects.prefix
    obeyer = Obeyer(
        nc, worker=worker or default_worker(), subject_prefix=subject_prefix, publisher=publisher
    )
    many = not hasattr(sessions, "generation_ticks")
    for session in sessions if many else [sessions]:  # type: ignore[union-attr]
        obeyer.add(session)  # type: ignore[arg-type]
    return await obeyer.start()
