"""The vendor SDK's ``RealtimeClient`` (``decart.realtime.client``), on a Session.

``await RealtimeClient.connect(base_url, api_key, local_track, options)`` makes a
:class:`rxrealtime.Session` with ``transport="livekit"`` (the negotiation the vendor's
client uses), connects it and returns the client; the calls keep the vendor's
signatures, checks, error classes and messages (``InvalidInputError("Prompt cannot be
empty")``, ``DecartSDKError("Prompt acknowledgment timed out")``...). What the session
adds stays reachable: ``client.session`` and ``client.streams`` (see
:class:`~rxrealtime.compat.decart.realtime.bridge.BridgedClient`).

Kept from the vendor: ``local_track`` may be LiveKit's own ``LocalVideoTrack`` (it is
published as it is) or any track with ``recv()`` (an aiortc one); with a track and no
``initial_state``, connect sends the "passthrough" ``set_image`` (no image, no prompt)
and waits for its ack, and does so again after a reconnect. Different, on purpose: a
reconnect restores the last prompt and image the service acknowledged (the vendor's
drops them), and ``set_image`` never fetches an ``http(s)`` URL (see ``images``).
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from typing import Any

from pydantic import BaseModel

from ....exceptions import AckTimeout, ConfigError, RealtimeError, RequestRejected
from ....options import default_user_agent
from ....session import Session
from ..errors import DecartSDKError, InvalidInputError, WebRTCError
from ..images import image_bytes
from ..models import ModelDefinition, to_rxrealtime
from ..types import ModelState
from .bridge import BridgedClient
from .subscribe import SubscribeClient, SubscribeOptions, decode_subscribe_token
from .types import RealtimeConnectOptions

__all__ = ["PROMPT_TIMEOUT_S", "UPDATE_TIMEOUT_S", "RealtimeClient", "SetInput", "request_error"]

logger = logging.getLogger("rxrealtime.compat.decart")

PROMPT_TIMEOUT_S = 15.0
"""How long ``set_prompt`` waits for the acknowledgement (the vendor's figure)."""
UPDATE_TIMEOUT_S = 30.0
"""How long ``set``, ``set_image`` (by default) and the passthrough wait for theirs."""
CODECS = {"h264": "h264", "vp9": None}
"""The vendor's codec names -> rxrealtime's ``preferred_codec``. rxrealtime publishes
H264 or VP8; a VP9 request keeps the transport's default (H264), with a warning."""


class SetInput(BaseModel):
    """``RealtimeClient.set``'s argument: a prompt, an image, or both, in one request."""

    prompt: str | None = None
    enhance: bool = True
    image: bytes | str | None = None


class RealtimeClient(BridgedClient):
    """A connected realtime session, called the vendor's way; see the module docstring.

    Events (``on``/``off``): ``connection_change`` (a state string), ``error`` (a
    :class:`WebRTCError`), ``generation_tick`` (a ``GenerationTickMessage``).
    """

    EVENTS = ("connection_change", "error", "generation_tick")

    def __init__(self, session: Session, options: RealtimeConnectOptions, track: Any) -> None:
        super().__init__(session, options.on_remote_stream, ticks=True,
                         on_reconnected=self._after_reconnect)  # fmt: skip
        self._passthrough_wanted = track is not None and not _has_state(options.initial_state)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def session_id(self) -> str | None:
        """The server session's id (a new one after a reconnect)."""
        return self._bridge.session_id

    @property
    def subscribe_token(self) -> str | None:
        """The token a view-only subscriber needs, spelled as the vendor spells it."""
        return self._bridge.subscribe_token

    @classmethod
    async def connect(
        cls, base_url: str, api_key: str, local_track: Any,
        options: RealtimeConnectOptions, integration: str | None = None,
    ) -> RealtimeClient:  # fmt: skip
        """Connect and return the client; any failure raises :class:`WebRTCError`
        (a wrong field of ``options`` raises :class:`InvalidInputError` first)."""
        _check_options(options)
        session: Session = _session(
            lambda **o: Session(base_url, api_key=_key(api_key), model=to_rxrealtime(options.model),
                                **o),
            integration, resolution=options.resolution, speed=options.speed,
            preferred_codec=_codec(options.preferred_video_codec),
            prompt_ack_timeout_s=PROMPT_TIMEOUT_S, image_ack_timeout_s=600.0,
        )  # fmt: skip
        client = cls(session, options, local_track)

        async def steps() -> None:
            state = options.initial_state
            prompt = state.prompt if state is not None else None
            raw = state.image if state is not None else None
            image = await image_bytes(raw) if raw is not None else None
            text, enhance = (prompt.text, prompt.enhance) if prompt else (None, True)
            await session.connect(local_track, prompt=text, image=image, enhance_prompt=enhance)
            if client._passthrough_wanted:
                await client._passthrough()

        await client._start(steps)
        return client

    @classmethod
    async def subscribe(
        cls, base_url: str, api_key: str, options: SubscribeOptions,
        integration: str | None = None,
    ) -> SubscribeClient:  # fmt: skip
        """Watch the session ``options.token`` names; a token that does not decode raises
        ``ValueError("Invalid subscribe token")``, any other failure :class:`WebRTCError`."""
        decode_subscribe_token(options.token)
        viewer: Session = _session(lambda **o: Session.subscribe(base_url, options.token,
                                                                 api_key=_key(api_key), **o),
                                   integration)  # fmt: skip
        client = SubscribeClient(viewer, options.on_remote_stream, ticks=False)

        async def steps() -> None:
            await viewer.connect()

        await client._start(steps)
        return client

    # -- requests ------------------------------------------------------------------

    async def set(self, input: SetInput) -> None:
        """Send a prompt and/or an image in one request and wait for its ack."""
        if input.prompt is None and input.image is None:
            raise InvalidInputError("At least one of 'prompt' or 'image' must be provided")
        if input.prompt is not None and not input.prompt.strip():
            raise InvalidInputError("Prompt cannot be empty")
        data = await image_bytes(input.image) if input.image is not None else None
        request = self._session.set_image(data, prompt=input.prompt, enhance_prompt=input.enhance)
        await self._image_request(request, UPDATE_TIMEOUT_S, data is not None)

    async def set_prompt(
        self, prompt: str, enhance: bool = True, enrich: bool | None = None
    ) -> None:
        """Change the prompt and wait for its ack (15 s)."""
        if enrich is not None:
            warnings.warn(
                "set_prompt(enrich=...) is deprecated, use set_prompt(enhance=...) instead",
                DeprecationWarning,
                stacklevel=2,
            )
            enhance = enrich
        if not prompt or not prompt.strip():
            raise InvalidInputError("Prompt cannot be empty")
        try:
            await self._session.set_prompt(prompt, enhance_prompt=enhance)
        except RealtimeError as exc:
            raise request_error(exc, "prompt") from exc
        self._passthrough_wanted = False  # the session restores this prompt on reconnect

    async def set_image(
        self, image: Any, prompt: str | None = None, enhance: bool = True,
        timeout: float = UPDATE_TIMEOUT_S,
    ) -> None:  # fmt: skip
        """Set (bytes, a path, a file-like object, a ``data:`` URI, base64) or clear
        (``None``) the reference image, with an optional prompt; wait ``timeout`` s."""
        data = await image_bytes(image) if image is not None else None
        enhance_prompt = enhance if prompt is not None else None
        request = self._session.set_image(data, prompt=prompt, enhance_prompt=enhance_prompt)
        await self._image_request(request, timeout, data is not None)

    async def _image_request(self, request: Any, timeout: float, restorable: bool) -> None:
        try:
            await asyncio.wait_for(request, timeout)
        except RealtimeError as exc:
            raise request_error(exc, "image") from exc
        except asyncio.TimeoutError:
            raise DecartSDKError("Image send timed out") from None
        if restorable:
            self._passthrough_wanted = False

    # -- the passthrough -----------------------------------------------------------

    async def _passthrough(self) -> None:
        """``set_image`` with neither image nor prompt: "send my video back as it is"."""
        try:
            await asyncio.wait_for(self._session.set_image(None), UPDATE_TIMEOUT_S)
        except RequestRejected as exc:
            reason = _reason(exc) or "unknown error"
            raise WebRTCError(f"Failed to send passthrough: {reason}", cause=exc) from exc
        except RealtimeError as exc:
            raise WebRTCError(str(exc), cause=exc) from exc
        except asyncio.TimeoutError:
            raise WebRTCError("Passthrough acknowledgment timed out") from None

    def _after_reconnect(self) -> None:
        """As the vendor's client does after each reconnect, when nothing is restored."""
        if not self._passthrough_wanted:
            return
        task = asyncio.ensure_future(self._passthrough())
        self._tasks.add(task)
        task.add_done_callback(self._passthrough_done)

    def _passthrough_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("passthrough after reconnect failed: %s", task.exception())

    async def disconnect(self) -> None:
        """Close for good: the room, the socket and every stream (safe to call twice)."""
        for task in list(self._tasks):
            task.cancel()
        await super().disconnect()


# -- helpers ---------------------------------------------------------------------------


def _has_state(state: ModelState | None) -> bool:
    return state is not None and (state.prompt is not None or state.image is not None)


def _check_options(options: Any) -> None:
    """The fields ``connect`` uses, checked before anything is made."""
    if not isinstance(options, RealtimeConnectOptions):
        raise InvalidInputError("options must be a RealtimeConnectOptions")
    if not isinstance(options.model, ModelDefinition):
        raise InvalidInputError("options.model must be a ModelDefinition: models.realtime(name)")
    if not callable(options.on_remote_stream):
        raise InvalidInputError("options.on_remote_stream must be callable")
    if options.initial_state is not None and not isinstance(options.initial_state, ModelState):
        raise InvalidInputError("options.initial_state must be a ModelState")
    if options.resolution not in (None, "720p", "1080p"):
        raise InvalidInputError(f"options.resolution must be '720p' or '1080p', not "
                                f"{options.resolution!r}")  # fmt: skip
    if options.preferred_video_codec not in CODECS:
        raise InvalidInputError(f"options.preferred_video_codec must be 'h264' or 'vp9', not "
                                f"{options.preferred_video_codec!r}")  # fmt: skip


def _codec(name: str) -> str | None:
    codec = CODECS[name]
    if codec is None:
        warnings.warn(f"preferred_video_codec={name!r}: rxrealtime publishes H264 or VP8; "
                      "the track is published with H264", UserWarning, stacklevel=3)  # fmt: skip
    return codec


def _key(api_key: str | None) -> str:
    """The key as given: never ``$RXREALTIME_API_KEY`` behind the caller's back (the
    vendor reads no environment here either), so a missing one fails the connect."""
    return api_key if isinstance(api_key, str) else ""


def _session(make: Any, integration: str | None, **options: Any) -> Any:
    """A session made with ``options`` (a user agent naming ``integration``); a refused
    argument (an empty key, a bad URL) fails the connect, as the vendor's does."""
    agent = default_user_agent() + (f" {integration}" if integration else "")
    try:
        return make(transport="livekit", user_agent=agent[:256], **options)
    except RealtimeError as exc:
        raise WebRTCError(str(exc), cause=exc) from exc


def _reason(exc: RequestRejected) -> str | None:
    """The server's own text of a rejection (the session words it ``"<kind> rejected:
    <reason>"``), ``None`` when it gave none."""
    reason = str(exc).split(" rejected: ", 1)[-1]
    return None if reason == "no reason given" else reason


def request_error(exc: RealtimeError, kind: str) -> DecartSDKError:
    """A request's failure as the vendor raises it, the typed error as ``cause``."""
    if isinstance(exc, AckTimeout):
        text = "Prompt acknowledgment timed out" if kind == "prompt" else "Image send timed out"
        return DecartSDKError(text, cause=exc)
    if isinstance(exc, RequestRejected):
        default = "Prompt failed" if kind == "prompt" else "Failed to set image"
        return DecartSDKError(_reason(exc) or default, cause=exc)
    if isinstance(exc, ConfigError):
        return InvalidInputError(str(exc), cause=exc)
    return DecartSDKError(str(exc), cause=exc)
