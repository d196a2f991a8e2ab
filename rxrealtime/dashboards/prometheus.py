"""Prometheus metrics for sessions and fleets, served over HTTP on loopback by default.

Every exporter owns a dedicated ``CollectorRegistry`` rather than the process-global
one: many exporters (tests, several fleets in one process) would otherwise clash on
metric names. Metrics are fed from a :class:`~rxrealtime.Fleet`'s keyed streams, so a
session keeps one label set across reconnects.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    generate_latest,
)
from reactivex.disposable import CompositeDisposable

from .. import protocol as p
from ..billing import Rate, tier_of, to_decimal
from ..diagnostics import Diagnostic, PhaseTiming, Reconnected
from ..exceptions import RealtimeError
from ..fleet import Fleet, FleetTotals, Keyed
from ..operators import Projection, billed_seconds, projection
from ..quality import LEVELS as QUALITY_LEVELS
from ..quality import ConnectionQuality, SessionStats
from ..session import AckLatency, ConnectionState, Session

__all__ = ["PrometheusExporter"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Bucket bounds (s) for prompt acknowledgements: loopback is sub-millisecond, hosted
#: services take tens to hundreds of milliseconds, and the protocol times out at 15 s.
PROMPT_ACK_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0)


class PrometheusExporter:
    """Exports a fleet's billing, ticks, states, errors, prompt-ack latency, media
    figures (fps, rtt, loss, glass-to-glass latency, time to first frame) and quality.

    ``exporter.watch(session)`` adds a session (to its own fleet unless one is given);
    ``await exporter.start(port)`` serves ``/metrics`` until ``await exporter.stop()``.
    ``budget_s`` / ``budget_cost`` (per session) set the budget gauges, which read +Inf
    without a budget; ``burn_window_s`` is the window of the burn-rate gauge.
    """

    def __init__(
        self,
        fleet: Fleet | None = None,
        *,
        registry: CollectorRegistry | None = None,
        namespace: str = "rxrealtime",
        budget_s: int | None = None,
        budget_cost: Rate | None = None,
        burn_window_s: float = 60.0,
    ) -> None:
        self.fleet = fleet if fleet is not None else Fleet()
        self.budget_s, self.burn_window_s = budget_s, burn_window_s
        self.budget_cost = None if budget_cost is None else to_decimal(budget_cost, "budget")
        self.registry = registry if registry is not None else CollectorRegistry()
        labels = ("session", "model")
        ns, reg = namespace, self.registry
        self.billed_seconds = Counter(
            "billed_seconds", "Billed generation seconds, across reconnects.", labels,
            namespace=ns, registry=reg,
        )  # fmt: skip
        self.ticks = Counter(
            "ticks", "generation_tick frames received.", labels, namespace=ns, registry=reg
        )
        self.connection_state = Enum(
            "connection_state", "Current connection state of the session.", labels,
            states=[str(s) for s in ConnectionState], namespace=ns, registry=reg,
        )  # fmt: skip
        self.errors = Counter(
            "errors", "Errors published on session.errors, by type.", (*labels, "type"),
            namespace=ns, registry=reg,
        )  # fmt: skip
        self.prompt_ack_latency = Histogram(
            "prompt_ack_latency_seconds", "Time from sending a prompt to its prompt_ack.",
            ("model",), buckets=PROMPT_ACK_BUCKETS, namespace=ns, registry=reg,
        )  # fmt: skip
        self.fleet_billed = Gauge(
            "fleet_billed_seconds", "Billed seconds of every watched session.",
            namespace=ns, registry=reg,
        )  # fmt: skip
        self.fleet_sessions = Gauge(
            "fleet_sessions", "Watched sessions.", namespace=ns, registry=reg
        )
        self.fleet_generating = Gauge(
            "fleet_generating_sessions", "Watched sessions now generating.",
            namespace=ns, registry=reg,
        )  # fmt: skip
        self.fleet_cost = Gauge(
            "fleet_cost", "Cost of every watched session's billing (when priced).",
            namespace=ns, registry=reg,
        )  # fmt: skip
        self.quality = Enum(
            "connection_quality", "Connection quality verdict (unknown until measured).",
            labels, states=["unknown", *QUALITY_LEVELS], namespace=ns, registry=reg,
        )  # fmt: skip
        self.inbound_fps = Gauge(
            "inbound_fps", "Generated frames received per second.", labels,
            namespace=ns, registry=reg,
        )  # fmt: skip
        self.rtt = Gauge(
            "rtt_seconds", "Round-trip time of the media path.", labels, namespace=ns,
            registry=reg,
        )  # fmt: skip
        self.packet_loss = Gauge(
            "packet_loss_ratio", "Fraction of media packets lost in the last interval.",
            labels, namespace=ns, registry=reg,
        )  # fmt: skip
        self.reconnects = Counter(
            "reconnects", "Reconnects after a lost link.", labels, namespace=ns, registry=reg
        )
        self.downtime = Counter(
            "downtime_seconds", "Seconds without a link, ended by reconnects.", labels,
            namespace=ns, registry=reg,
        )  # fmt: skip
        self.first_frame = Gauge(
            "time_to_first_frame_seconds",
            "From connect (or the latest reconnect) to the first generated frame.",
            labels, namespace=ns, registry=reg,
        )  # fmt: skip
        self.glass_to_glass = Gauge(
            "glass_to_glass_seconds", "Glass-to-glass latency of the generated video over "
            "the last samples (session.stats latency), by quantile: 0.5 and 0.9.",
            (*labels, "quantile"), namespace=ns, registry=reg,
        )  # fmt: skip
        self.burn_rate = Gauge(
            "burn_rate_seconds_per_minute", "Billed seconds per minute (burn_window_s window).",
            labels, namespace=ns, registry=reg,
        )  # fmt: skip
        self.budget_limit = Gauge(
            "budget_limit_seconds", "The session's budget in billed seconds (+Inf: none).",
            labels, namespace=ns, registry=reg,
        )  # fmt: skip
        self.budget_remaining = Gauge(
            "budget_remaining_seconds", "Billed seconds left before the budget (+Inf: none).",
            labels, namespace=ns, registry=reg,
        )  # fmt: skip
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._host = "127.0.0.1"
        fl = self.fleet
        self._subscriptions = CompositeDisposable(
            fl.billed_deltas.subscribe(self._guard(self._on_billed)),
            fl.ticks.subscribe(self._guard(self._on_tick)),
            fl.states.subscribe(self._guard(self._on_state)),
            fl.errors.subscribe(self._guard(self._on_error)),
            fl.totals.subscribe(self._guard(self._on_totals)),
        )

    # -- feeding -------------------------------------------------------------------

    def watch(self, session: Session, key: str | None = None) -> str:
        """Export ``session``'s metrics; returns its key (the ``session`` label)."""
        model = session.model.name

        def on_latency(latency: AckLatency) -> None:
            if latency.kind == "prompt":
                self.observe_prompt_ack(model, latency.seconds)

        self._subscriptions.add(session.ack_latencies.subscribe(self._guard(on_latency)))
        key = self.fleet.add(session, key)

        def labels() -> dict[str, str]:  # the fleet's key settles on the first session id
            return {"session": self.fleet.key_of(session), "model": model}

        def on_quality(quality: ConnectionQuality) -> None:
            self.quality.labels(**labels()).state(quality.level)

        def on_stats(stats: SessionStats) -> None:
            self.inbound_fps.labels(**labels()).set(stats.inbound_fps)
            if stats.rtt_s is not None:
                self.rtt.labels(**labels()).set(stats.rtt_s)
            if stats.packet_loss is not None:
                self.packet_loss.labels(**labels()).set(stats.packet_loss)
            latency = stats.latency  # a figure not measured makes no series (never 0)
            if latency is not None:
                for quantile, seconds in (("0.5", latency.p50_s), ("0.9", latency.p90_s)):
                    if seconds is not None:
                        self.glass_to_glass.labels(**labels(), quantile=quantile).set(seconds)
                if latency.first_frame_s is not None:  # the latest link's, as diagnostics
                    self.first_frame.labels(**labels()).set(latency.first_frame_s)

        def on_diagnostic(event: Diagnostic) -> None:
            if isinstance(event, Reconnected):
                self.reconnects.labels(**labels()).inc()
                self.downtime.labels(**labels()).inc(event.downtime_s)
            elif isinstance(event, PhaseTiming) and event.phase == "first_frame":
                self.first_frame.labels(**labels()).set(event.seconds)

        def on_projection(pr: Projection) -> None:
            self.quality.labels(**labels())  # a new series starts "unknown", until measured
            self.burn_rate.labels(**labels()).set(pr.seconds_per_min)
            limit = self.budget_s if self.budget_s is not None else float("inf")
            if self.budget_cost is not None and pr.remaining_s is not None:
                limit = pr.billed_s + pr.remaining_s  # the first limit reached, in seconds
            self.budget_limit.labels(**labels()).set(limit)
            left = pr.remaining_s if pr.remaining_s is not None else float("inf")
            self.budget_remaining.labels(**labels()).set(left)

        project = projection(
            self.budget_s, self.budget_cost, window_s=self.burn_window_s,
            rate_per_second=self.fleet.price_of(model, tier_of(session)),
        )  # fmt: skip
        billed = session.generation_ticks.pipe(billed_seconds(resets=session.session_started))
        self._subscriptions.add(billed.pipe(project).subscribe(self._guard(on_projection)))
        self._subscriptions.add(session.quality.subscribe(self._guard(on_quality)))
        self._subscriptions.add(session.stats.subscribe(self._guard(on_stats)))
        self._subscriptions.add(session.diagnostics.subscribe(self._guard(on_diagnostic)))
        return key

    def observe_prompt_ack(self, model: str, seconds: float) -> None:
        """Record one prompt acknowledgement that took ``seconds`` for ``model`` (what
        :meth:`watch` does for every value of ``session.ack_latencies``)."""
        self.prompt_ack_latency.labels(model=model).observe(seconds)

    def _guard(self, handler: Callable[[T], None]) -> Callable[[T], None]:
        def run(value: T) -> None:
            try:
                handler(value)
            except Exception:  # a metric bug must not break the session's streams
                logger.exception("prometheus exporter failed on %r", value)

        return run

    def _on_billed(self, k: Keyed[int]) -> None:
        self.billed_seconds.labels(session=k.key, model=k.model).inc(k.value)

    def _on_tick(self, k: Keyed[p.GenerationTick]) -> None:
        self.ticks.labels(session=k.key, model=k.model).inc()

    def _on_state(self, k: Keyed[ConnectionState]) -> None:
        self.connection_state.labels(session=k.key, model=k.model).state(str(k.value))

    def _on_error(self, k: Keyed[RealtimeError]) -> None:
        kind = type(k.value).__name__
        self.errors.labels(session=k.key, model=k.model, type=kind).inc()

    def _on_totals(self, totals: FleetTotals) -> None:
        self.fleet_billed.set(totals.billed_s)
        self.fleet_sessions.set(totals.sessions)
        self.fleet_generating.set(totals.generating)
        if totals.cost is not None:
            self.fleet_cost.set(float(totals.cost))

    # -- serving -------------------------------------------------------------------

    def render(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return bytes(generate_latest(self.registry))

    @property
    def port(self) -> int:
        """The port ``/metrics`` is served on (the one picked, after ``start(0)``)."""
        return self._port

    @property
    def url(self) -> str:
        """The ``http://host:port/metrics`` URL to scrape, once started."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}/metrics"

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> PrometheusExporter:
        """Serve ``/metrics`` (loopback by default; ``port=0`` picks a free port)."""

        async def metrics(_: web.Request) -> web.Response:
            response = web.Response(body=self.render())
            response.headers["Content-Type"] = CONTENT_TYPE_LATEST
            return response

        app = web.Application()
        handler: Any = metrics
        with contextlib.suppress(ImportError):  # prometheus-client 0.22+ has its own handler
            from prometheus_client.aiohttp import make_aiohttp_handler  # (negotiation, gzip)

            handler = make_aiohttp_handler(self.registry)
        app.router.add_get("/metrics", handler)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self._port, self._host = self._runner.addresses[0][1], host
        logger.info("metrics on http://%s:%s/metrics", host, self._port)
        return self

    async def stop(self) -> None:
        """Stop serving and stop listening to the fleet."""
        self._subscriptions.dispose()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> PrometheusExporter:
        return self if self._runner is not None else await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
