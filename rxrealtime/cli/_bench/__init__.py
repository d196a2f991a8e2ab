"""The bundled benchmark suite (``rxrealtime bench``, ``python -m benchmarks``, ``make bench``).

It lives inside the package, not only in the repository's ``benchmarks/`` folder, so that
``rxrealtime bench`` works from an installed wheel. Four suites:

* :mod:`.decode`: ns per frame of ``protocol.decode`` against pydantic, ``json.loads`` and
  the single-struct msgspec limit, on a realistic frame mix;
* :mod:`.dispatch`: frame to subscriber through the session's streams, against a reactivex
  ``Subject`` and a bare callback list;
* :mod:`.e2e`: a real loopback WebSocket flooded by the embedded server, against a bare
  aiohttp receive loop;
* :mod:`.scale`: K full sessions (signaling + a small video peer) in one process.

Every figure is a median over repeats with its min and max, and every comparison is a
ratio of two contenders measured in the same repeat (machines are shared and noisy).
"""

from __future__ import annotations

from .runner import SUITES, main, run_suites

__all__ = ["SUITES", "main", "run_suites"]
