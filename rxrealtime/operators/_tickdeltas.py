from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable

from ._billedseconds import clocked


def tick_deltas_(
    resets: Observable[Any] | None = None,
) -> Callable[[Observable[Any]], Observable[int]]:
    return clocked(resets, lambda _, delta: delta, "tick_deltas")
