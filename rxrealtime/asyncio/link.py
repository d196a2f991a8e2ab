"""One link's I/O: its signaling socket, its media transport and the tasks serving them.

A link is one server session. The session core decides when links open and close;
this object only does it, and makes sure its teardown runs once and to the end even
when the caller that started it is cancelled (a half-closed link would leak its peer
connection, its socket or its HTTP session).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from ..transports.base import MediaTransport
from .signaling import FrameRouter, Signaling

__all__ = ["Link"]

logger = logging.getLogger(__name__)


class Link:
    """Socket + media of link number ``number``; see the module docstring."""

    def __init__(self, number: int, socket: Signaling) -> None:
        self.number = number
        self.socket = socket
        self.media: MediaTransport | None = None
        self.opener: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._teardown: asyncio.Task[None] | None = None
        self._on_close: list[Callable[[], object]] = []

    def on_close(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` when the teardown starts (to stop what watched this link)."""
        self._on_close.append(callback)

    @property
    def closing(self) -> bool:
        return self._teardown is not None

    def start_opening(self, coro: Coroutine[Any, Any, None]) -> None:
        self.opener = asyncio.ensure_future(coro)

    def start_reading(self, router: FrameRouter, on_closed: Callable[[int | None], None]) -> None:
        """Run the read loop; ``on_closed(code)`` if the socket ends before our teardown."""

        async def read() -> None:
            try:
                await self.socket.read(router)
            finally:
                if not self.closing:
                    on_closed(self.socket.close_code)

        self._reader = asyncio.ensure_future(read())

    def close(self, drain_s: float = 0.0) -> asyncio.Task[None]:
        """Start (or join) the one teardown; await the returned task to see it end."""
        if self._teardown is None:
            self._teardown = asyncio.ensure_future(self._close(drain_s))
        return self._teardown

    async def _close(self, drain_s: float) -> None:
        for callback in self._on_close:
            callback()
        opener = self.opener
        if opener is not None and not opener.done():
            opener.cancel()
            await asyncio.gather(opener, return_exceptions=True)
        await self.socket.close(drain_s, self._reader)
        if self.media is not None:
            try:
                await asyncio.wait_for(self.media.close(), 5.0)
            except (asyncio.TimeoutError, Exception) as exc:
                logger.warning("closing the media transport failed: %r", exc)
