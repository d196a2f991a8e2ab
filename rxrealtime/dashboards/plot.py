"""Billed seconds and cost over time, recorded from a session and drawn with matplotlib.

matplotlib is an optional extra (``pip install 'rxrealtime[plot]'``) and is imported only
when a plot is drawn, so importing rxrealtime never pays for it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..billing import BilledTick, Rate, SessionBilling, resolve_rate, tier_of
from ..exceptions import ConfigError
from ..session import Session

__all__ = ["BillingLog", "plot_billing", "require_matplotlib"]


@dataclass
class BillingLog:
    """``(elapsed seconds, billed seconds)`` samples of a session, one per tick."""

    rate: Decimal | None = None
    samples: list[tuple[float, int]] = field(default_factory=list)
    _start: float = field(default_factory=time.monotonic, repr=False)
    _billing: SessionBilling | None = field(default=None, repr=False)

    @classmethod
    def record(
        cls,
        session: Session,
        *,
        rate_per_second: Rate | None = None,
        prices: Mapping[str, Rate] | None = None,
    ) -> BillingLog:
        """Start recording ``session``'s billing (across reconnects) from now on; a price
        is taken at the session's speed tier (``session.tier``)."""
        model = session.model.name if prices else None
        log = cls(rate=resolve_rate(rate_per_second, prices, model, tier_of(session)))
        log._billing = SessionBilling(session, on_billed=log._on_billed)
        return log

    def _on_billed(self, billed: BilledTick) -> None:
        self.samples.append((time.monotonic() - self._start, billed.total))

    def stop(self) -> None:
        """Stop recording; the samples taken so far stay for :func:`plot_billing`."""
        if self._billing is not None:
            self._billing.dispose()


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(
            "plotting needs matplotlib: pip install 'rxrealtime[plot]' (or pip install matplotlib)"
        ) from None
    matplotlib.use("Agg")  # files only: never open a window or need a display
    import matplotlib.pyplot as plt

    return plt


def require_matplotlib() -> None:
    """Fail early, before a session bills anything, when a plot was asked for."""
    _pyplot()


def plot_billing(log: BillingLog, path: str | Path, title: str = "rxrealtime billing") -> Path:
    """Draw billed seconds (and cost, when the log has a rate) over time into ``path``.

    Raises :class:`~rxrealtime.ConfigError` with the install hint if matplotlib is missing.
    """
    plt = _pyplot()
    path = Path(path)
    times = [0.0] + [t for t, _ in log.samples]
    billed = [0] + [b for _, b in log.samples]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    try:
        ax.step(times, billed, where="post", color="tab:blue", label="billed seconds")
        ax.set_xlabel("elapsed (s)")
        ax.set_ylabel("billed seconds", color="tab:blue")
        ax.set_title(title)
        if log.rate is not None:
            cost_ax = ax.twinx()
            cost_ax.step(
                times, [float(log.rate * b) for b in billed], where="post",
                color="tab:orange", linestyle="--", label="cost",
            )  # fmt: skip
            cost_ax.set_ylabel("cost", color="tab:orange")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
