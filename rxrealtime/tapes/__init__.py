"""Session tapes: record a live session, replay it in virtual time, serve it back.

A tape is a JSON Lines file (gzip when its name ends in ``.gz``): a header, then one
``[t, kind, value]`` record per event of a session's streams, ``t`` seconds after the
start (docs/tapes.md has the format).

* :func:`record` (or :class:`TapeRecorder`) writes one while a session runs, off the
  hot path; API keys, TURN credentials, room tokens and images never reach it.
* :func:`replay` plays one back as a session's streams on any scheduler, so operators,
  fleets and dashboards run on it unchanged (and in virtual time with ``TestScheduler``);
  :func:`recorded` gives the values a stream of the replay emits, for assertions.
* :func:`load` reads and checks one (:class:`TapeError` names the bad line);
  :func:`summarize` sums it up (``rxrealtime tape show``).
* ``rxrealtime serve --tape FILE`` plays the server's side of one to a real client.
"""

from __future__ import annotations

from .format import FORMAT_VERSION, KINDS, Record, TapeError, TapeHeader
from .reader import Tape, load
from .recorder import TapeRecorder, record
from .replayer import Replay, TapeTimeScheduler, recorded, replay
from .summary import TapeSummary, summarize

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "Record",
    "Replay",
    "Tape",
    "TapeError",
    "TapeHeader",
    "TapeRecorder",
    "TapeSummary",
    "TapeTimeScheduler",
    "load",
    "record",
    "recorded",
    "replay",
    "summarize",
]
