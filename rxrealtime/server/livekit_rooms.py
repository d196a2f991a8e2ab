"""The embedded server's LiveKit side: a LiveKit server, its RoomService, tokens, rooms.

By default :class:`LivekitRooms` starts a local livekit-server on free loopback ports
(:mod:`rxrealtime.server.livekit_server`, a random API secret) and stops it with the embedded
server; on the embedded server's own address instead when that is a concrete IPv4 one
(``--host 10.200.0.1``: where its clients can reach it, see :func:`livekit_host`);
``ServerSettings.livekit_url/key/secret`` name an existing one instead. Each session
that sends ``livekit_join`` gets a :class:`SessionRoom`: a room made with the RoomService
API, an access token for the client (publish and subscribe, that room only), and the
server's own generating participant (:mod:`.livekit_video`).

LiveKit's SDKs (``livekit``, ``livekit-api``) are imported here on first use only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import protocol as p
from ..exceptions import ConfigError, SecretScope
from .livekit_server import (
    BUILD_HINT,
    DEV_KEY,
    LOOPBACK,
    LiveKitServer,
    LiveKitServerError,
    find_livekit_binary,
)
from .livekit_video import RoomGenerator
from .settings import ServerSettings
from .video import FrameSink

if TYPE_CHECKING:
    from livekit import api

__all__ = [
    "GENERATED_PREFIX",
    "LivekitRooms",
    "SessionRoom",
    "check_livekit_sdk",
    "livekit_host",
]

logger = logging.getLogger(__name__)

GENERATED_PREFIX = "inference-server-"
"""Clients take the video of the participant whose identity starts with this."""
ROOM_EMPTY_TIMEOUT_S = 30


def check_livekit_sdk() -> None:
    """Raise a clear :class:`ConfigError` unless LiveKit's two SDKs are importable."""
    try:
        import livekit.api
        import livekit.rtc  # noqa: F401
    except ImportError:
        raise ConfigError(
            "LiveKit mode needs LiveKit's SDKs: pip install livekit livekit-api"
        ) from None


def _http_url(url: str) -> str:
    """The RoomService address of a LiveKit URL (ws -> http, wss -> https)."""
    for scheme, http in (("wss://", "https://"), ("ws://", "http://")):
        if url.startswith(scheme):
            return http + url.removeprefix(scheme)
    return url


def _ws_url(url: str) -> str:
    for scheme, ws in (("https://", "wss://"), ("http://", "ws://")):
        if url.startswith(scheme):
            return ws + url.removeprefix(scheme)
    return url


@dataclass
class SessionRoom:
    """One session's room: its name, the client's identity and credentials, the generator."""

    rooms: LivekitRooms
    name: str
    client_identity: str
    info: p.LivekitRoomInfo
    generator: RoomGenerator

    async def drop_client(self) -> bool:
        """Remove the client from the room (a fault); False if it was not there."""
        return await self.rooms.remove_participant(self.name, self.client_identity)

    async def close(self) -> None:
        """Leave and delete the room: whoever is still in it is disconnected."""
        await self.generator.close()
        await self.rooms.delete_room(self.name)


def livekit_host(host: str) -> str:
    """Where a local livekit-server listens for an embedded server on ``host``: that
    address when it is one concrete IPv4 address (clients that reach the embedded server
    there reach its rooms there too), else loopback, as before: a wildcard (``0.0.0.0``,
    ``::``) would have livekit-server hand out every address of the machine as a
    candidate, and a name (``localhost``) or an IPv6 address is not what its config takes.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return LOOPBACK
    if address.version != 4 or address.is_unspecified:
        return LOOPBACK
    return str(address)


class LivekitRooms:
    """The LiveKit server of an embedded server in LiveKit mode; :meth:`start` first."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.process: LiveKitServer | None = None
        """The local livekit-server this started, if it started one."""
        self.url = ""
        """Where clients join rooms (``ws://127.0.0.1:<port>`` for a local server)."""
        self._key = ""
        self._secret = ""
        self._secrets = SecretScope()  # the API secret, redacted from start() to stop()
        self._api: api.LiveKitAPI | None = None
        self._numbers = itertools.count(1)

    def __repr__(self) -> str:  # never the secret
        return f"<LivekitRooms {self.url or 'stopped'}>"

    async def start(self) -> None:
        check_livekit_sdk()
        from livekit import api

        settings = self.settings
        if settings.livekit_url is not None:
            assert settings.livekit_key is not None and settings.livekit_secret is not None
            self.url = _ws_url(settings.livekit_url)
            self._key = settings.livekit_key
            self._secret = settings.livekit_secret.get_secret_value()
        else:
            binary = find_livekit_binary()
            if binary is None:
                raise ConfigError(f"LiveKit mode: no livekit-server binary found; {BUILD_HINT}")
            self._key, self._secret = DEV_KEY, secrets.token_urlsafe(32)
            self.process = LiveKitServer(binary, api_key=self._key, api_secret=self._secret,
                                         host=livekit_host(settings.host))  # fmt: skip
            try:
                self.process.spawn()  # on the loop's thread: the process dies with it
                await asyncio.to_thread(self.process.wait_ready)
            except (LiveKitServerError, OSError) as exc:
                await asyncio.to_thread(self.process.close)
                self.process = None
                raise ConfigError(f"LiveKit mode: cannot start livekit-server: {exc}") from None
            self.url = self.process.url
            logger.info("local livekit-server on %s (pid %s)", self.url, self.process.pid)
        self._secrets.add(self._secret)
        self._api = api.LiveKitAPI(
            url=_http_url(self.url), api_key=self._key, api_secret=self._secret
        )

    async def stop(self) -> None:
        self._secrets.release()
        if self._api is not None:
            await self._api.aclose()
            self._api = None
        if self.process is not None:
            await asyncio.to_thread(self.process.close)
            self.process = None

    def token(self, identity: str, room: str, *, publish: bool) -> str:
        """An access token for ``room`` only: subscribe always, publish if asked."""
        from livekit import api

        grants = api.VideoGrants(
            room_join=True,
            room=room,
            can_publish=publish,
            can_publish_data=publish,
            can_subscribe=True,
        )
        return (
            api.AccessToken(self._key, self._secret)
            .with_identity(identity)
            .with_grants(grants)
            .to_jwt()
        )

    def _service(self) -> api.LiveKitAPI:
        if self._api is None:
            raise ConfigError("the LiveKit side of the embedded server is not running")
        return self._api

    async def open_room(
        self, session_id: str, sink: FrameSink, receive_only_after_s: float = 1.5,
        publish: tuple[int, int, float] = (1280, 720, 30.0),
    ) -> SessionRoom:  # fmt: skip
        """Create the session's room, start the generator in it, mint the client's token."""
        from livekit import api

        name = f"room-{session_id}"
        await self._service().room.create_room(
            api.CreateRoomRequest(name=name, empty_timeout=ROOM_EMPTY_TIMEOUT_S)
        )
        client = f"client-{session_id[:12]}"
        generator = RoomGenerator(
            self.url,
            self.token(f"{GENERATED_PREFIX}{next(self._numbers)}", name, publish=True),
            client,
            sink,
            receive_only_after_s=receive_only_after_s,
            publish=publish,
        )
        generator.start()
        info = p.LivekitRoomInfo(
            livekit_url=self.url,
            token=self.token(client, name, publish=True),
            room_name=name,
            session_id=session_id,
        )
        return SessionRoom(self, name, client, info, generator)

    def viewer_credentials(self, room: SessionRoom) -> dict[str, str]:
        """What ``POST /watch-stream/{room}`` answers: a token that can subscribe only."""
        identity = f"viewer-{secrets.token_hex(4)}"
        return {
            "livekit_url": self.url,
            "token": self.token(identity, room.name, publish=False),
            "room_name": room.name,
            "session_id": room.info.session_id,
        }

    async def remove_participant(self, room: str, identity: str) -> bool:
        from livekit import api

        try:
            await self._service().room.remove_participant(
                api.RoomParticipantIdentity(room=room, identity=identity)
            )
        except Exception as exc:  # TwirpError (not found), or the server is gone
            logger.warning("removing %s from %s failed: %s", identity, room, exc)
            return False
        return True

    async def delete_room(self, room: str) -> None:
        from livekit import api

        if self._api is None:
            return
        try:
            await self._api.room.delete_room(api.DeleteRoomRequest(room=room))
        except Exception as exc:  # already gone, or the server is
            logger.debug("deleting room %s failed: %s", room, exc)
