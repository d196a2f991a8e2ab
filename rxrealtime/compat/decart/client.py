"""The vendor SDK's ``DecartClient``: where the API key and the base URLs come from.

Realtime code uses it only to hold those (``RealtimeClient.connect(base_url=
client.realtime_base_url, api_key=client.api_key, ...)``), so that is what it does here,
with the vendor's checks at construction: no key raises :class:`InvalidAPIKeyError`, a
base URL of the wrong scheme :class:`InvalidBaseURLError`. The vendor checks only the
batch ``base_url``; the facade also checks ``realtime_base_url`` (ws, wss, http or
https), the one it connects to, so a typo fails here and not at the first connect.
Its batch calls (``process``, ``queue``, ``tokens``) raise ``NotImplementedError``.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any, NoReturn

from .errors import InvalidAPIKeyError, InvalidBaseURLError

__all__ = ["API_KEY_ENV", "DecartClient"]

API_KEY_ENV = "DECART_API_KEY"
"""Where :class:`DecartClient` finds the key when none is passed (the vendor's name)."""


class DecartClient:
    """Holds the API key and the base URLs; see the module docstring."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str = "https://api.decart.ai",
        realtime_base_url: str = "wss://api.decart.ai",
        integration: str | None = None,
    ) -> None:
        resolved = api_key or os.environ.get(API_KEY_ENV, "").strip() or None
        if not resolved:
            raise InvalidAPIKeyError()
        if not base_url.startswith(("http://", "https://")):
            raise InvalidBaseURLError(base_url)
        if not realtime_base_url.startswith(("ws://", "wss://", "http://", "https://")):
            raise InvalidBaseURLError(realtime_base_url)
        self.api_key = resolved
        self.base_url = base_url
        self.realtime_base_url = realtime_base_url
        self.integration = integration

    def __repr__(self) -> str:  # never the key
        return f"<DecartClient realtime_base_url={self.realtime_base_url!r}>"

    async def close(self) -> None:
        """Nothing to release: the facade's client opens no connection of its own."""

    async def __aenter__(self) -> DecartClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        await self.close()

    async def process(self, options: dict[str, Any]) -> NoReturn:
        """Not offered: the facade covers the realtime API only."""
        _batch_api("DecartClient.process")

    @property
    def queue(self) -> NoReturn:
        """Not offered: the facade covers the realtime API only."""
        _batch_api("DecartClient.queue")

    @property
    def tokens(self) -> NoReturn:
        """Not offered: the facade covers the realtime API only."""
        _batch_api("DecartClient.tokens")


def _batch_api(what: str) -> NoReturn:
    raise NotImplementedError(
        f"{what} belongs to the vendor's batch API; rxrealtime.compat.decart covers the "
        "realtime API only (use the decart package for batch jobs and client tokens)"
    )
