"""Ways to look at sessions: Prometheus metrics, a live terminal view, billing plots.

Each dashboard only reads the session's (or a :class:`~rxrealtime.Fleet`'s) streams.
None of them ever shows an API key: sessions are named by their server session id and
model, and URLs only ever come from ``session.url``, which is redacted.
"""

from __future__ import annotations

from .plot import BillingLog, plot_billing
from .prometheus import PrometheusExporter
from .terminal import TerminalDashboard

__all__ = ["BillingLog", "PrometheusExporter", "TerminalDashboard", "plot_billing"]
