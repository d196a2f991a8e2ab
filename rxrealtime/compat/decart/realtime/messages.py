"""The one server message the vendor's realtime API hands to user code: a billing tick."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

__all__ = ["GenerationTickMessage"]


class GenerationTickMessage(BaseModel):
    """What ``on("generation_tick")`` callbacks get: ``seconds`` billed so far in the
    current server session (it restarts at 0 after a reconnect; the session's
    ``generation_ticks`` with ``rto.billed_seconds`` give the running total)."""

    type: Literal["generation_tick"] = "generation_tick"
    seconds: int
