"""The vendor SDK's error classes (``decart.errors``), by the same names and messages.

Migrated code catches these by name (``except WebRTCError``, ``except DecartSDKError``)
and sometimes matches their text ("Prompt acknowledgment timed out"), so both are kept.

Every one is also a :class:`~rxrealtime.RealtimeError`, for two reasons:

* a gradual migration mixes facade calls and :class:`~rxrealtime.Session` calls, and one
  ``except rt.RealtimeError`` then covers both;
* a ``RealtimeError`` redacts its text: the vendor builds an error from whatever failed
  (an aiohttp message holding the signaling URL with its ``api_key``, a server's
  echo), and here no such text can show a live secret.

A facade error made from one of rxrealtime's keeps it as ``cause`` (and as
``__cause__``): the typed error (:class:`~rxrealtime.AuthError`,
:class:`~rxrealtime.ConnectionLost`, ...) is one attribute away.
"""

from __future__ import annotations

from typing import Any

from ...exceptions import RealtimeError, redact_secrets

__all__ = [
    "DecartSDKError",
    "InvalidAPIKeyError",
    "InvalidBaseURLError",
    "InvalidInputError",
    "ModelNotFoundError",
    "ProcessingError",
    "QueueResultError",
    "QueueStatusError",
    "QueueSubmitError",
    "TokenCreateError",
    "TokenDecodeError",
    "TokenVerifyError",
    "WebRTCError",
]


class DecartSDKError(RealtimeError):
    """Base of the facade's errors: ``message`` (redacted), ``data`` and ``cause``."""

    def __init__(
        self, message: str, data: dict[str, Any] | None = None, cause: Exception | None = None
    ) -> None:
        self.message = redact_secrets(message)
        self.data = data or {}
        self.cause = cause
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidAPIKeyError(DecartSDKError):
    """No API key: neither ``api_key=`` nor ``$DECART_API_KEY``."""

    def __init__(self) -> None:
        super().__init__(
            "Missing API key. Pass `api_key` to DecartClient() or set the DECART_API_KEY "
            "environment variable."
        )


class InvalidBaseURLError(DecartSDKError):
    """A base URL of the wrong scheme."""

    def __init__(self, url: str | None = None) -> None:
        super().__init__(f"Invalid base URL: {url}" if url else "Invalid base URL")


class WebRTCError(DecartSDKError):
    """A realtime connection failed (``connect`` and ``subscribe`` raise only this), or
    a connected session reports an error (the ``error`` event)."""

    def __init__(self, message: str = "WebRTC error", cause: Exception | None = None) -> None:
        super().__init__(message, cause=cause)


class InvalidInputError(DecartSDKError):
    """An argument failed validation; nothing was sent."""


class ModelNotFoundError(DecartSDKError):
    """``models.realtime(name)`` with a name the catalogue does not hold."""

    def __init__(self, model: str) -> None:
        super().__init__(f"Model {model} not found")
        self.model = model


class ProcessingError(DecartSDKError):
    """The vendor's batch API failed (kept for ``except`` clauses; the facade is realtime)."""


class QueueSubmitError(DecartSDKError):
    """The vendor's queue API failed to submit (kept for ``except`` clauses)."""


class QueueStatusError(DecartSDKError):
    """The vendor's queue API failed to report a status (kept for ``except`` clauses)."""


class QueueResultError(DecartSDKError):
    """The vendor's queue API failed to return a result (kept for ``except`` clauses)."""


class TokenCreateError(DecartSDKError):
    """The vendor's token API failed to create a token (kept for ``except`` clauses)."""


class TokenDecodeError(DecartSDKError):
    """A client token did not decode (kept for ``except`` clauses)."""


class TokenVerifyError(DecartSDKError):
    """A client token did not verify (kept for ``except`` clauses)."""
