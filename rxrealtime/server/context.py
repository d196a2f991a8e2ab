"""What a client of the reference server may reach of the server it runs in.

The app builds every client (:mod:`.peer`, :mod:`.sessions`, :mod:`.tape`), so a client
that imported the app would close an import circle. Clients depend on this leaf instead;
the app satisfies it and hands itself over. The members are exactly what the clients
use, so a new dependency on the app has to be added here, where it shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from .. import protocol as p
from .settings import Faults, ServerSettings

if TYPE_CHECKING:
    from aiortc.contrib.media import MediaRelay

    from .livekit_rooms import LivekitRooms

__all__ = ["PeerContext", "ServerContext", "SessionT"]

SessionT = TypeVar("SessionT")
"""The streaming session type, a parameter so that naming it here does not bring back
the circle (:mod:`.sessions` imports this module)."""


class PeerContext(Protocol):
    """What the signaling every client shares needs: limits, faults, where the server
    listens (sent after each answer), and counters to report bad frames to.

    A protocol, not a state object: the app already is that state, steered from outside
    by tests (``server.faults.stall_answer = True``, ``server.counters``) and partly made
    only once it starts (``livekit``, ``port``). A separate object would have to mirror
    those attributes or the app delegate to it; a protocol names the dependency without
    moving any state, and mypy checks that the app fits wherever it passes itself.
    Members are read-only properties because no client rebinds them (plain attributes
    satisfy them).
    """

    @property
    def settings(self) -> ServerSettings: ...

    @property
    def faults(self) -> Faults: ...

    @property
    def port(self) -> int: ...

    def count(self, name: str, n: int = 1) -> None: ...


class ServerContext(PeerContext, Protocol[SessionT]):
    """What a streaming session or a viewer needs beyond signaling: the relay to fan its
    video out, the LiveKit side, the registries it enters and leaves, the send observers
    (the bench), the counters it reads (one ICE restart per server) and the drop budget.

    Generic in the session type because the room registry and the send observers hold
    sessions: the session module fixes it to its own class.
    """

    @property
    def relay(self) -> MediaRelay: ...

    @property
    def livekit(self) -> LivekitRooms | None: ...

    @property
    def rooms(self) -> dict[str, SessionT]: ...

    @property
    def on_send(self) -> list[Callable[[SessionT, p.ServerMessage], None]]: ...

    @property
    def counters(self) -> dict[str, int]: ...

    @property
    def billed_by_session(self) -> dict[str, int]: ...

    def take_drop(self) -> bool: ...
