"""Facades that let code written for another SDK run on rxrealtime's sessions.

:mod:`rxrealtime.compat.decart` mirrors the vendor's Python SDK (``decart`` 0.2.4): code
written against it runs after changing its import lines, on a :class:`~rxrealtime.Session`
that streams through a LiveKit room, and can then adopt the session's streams and
operators one call at a time. Nothing here is loaded by ``import rxrealtime``: a facade
is an opt-in for migrating code, and its media path needs the LiveKit extra
(``pip install 'rxrealtime[livekit]'``).
"""

from __future__ import annotations

__all__: list[str] = []
