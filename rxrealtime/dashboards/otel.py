"""OpenTelemetry metrics for a session or a fleet (the optional extra ``rxrealtime[otel]``).

``instrument(session_or_fleet, meter_provider=None)`` records, on the meter
``rxrealtime``:

==============================  ==========  ===================================================
instrument                      unit        what
==============================  ==========  ===================================================
``rxrealtime.billed``           ``s``       counter: billed generation seconds, across reconnects
``rxrealtime.cost``             ``1``       counter: their cost, in the price's currency
``rxrealtime.reconnects``       ``{reconnect}``  counter: reconnects after a lost link
``rxrealtime.errors``           ``{error}`` counter: errors, with ``error.type``
``rxrealtime.ack.latency``      ``s``       histogram: request to acknowledgement, with
                                            ``rxrealtime.ack.kind`` (``prompt``/``image``)
``rxrealtime.connection.quality``  ``1``    gauge: 0 good, 1 fair, 2 poor, 3 critical, with
                                            ``rxrealtime.quality.level`` and ``.limiting``
``rxrealtime.glass_to_glass.latency``  ``s``  gauge: glass-to-glass latency over the last
                                            samples, with ``rxrealtime.latency.quantile``
                                            (``0.5``/``0.9``) and ``rxrealtime.latency.source``
``rxrealtime.time_to_first_frame``  ``s``   gauge: from the latest link's start to its first
                                            generated frame
==============================  ==========  ===================================================

Every point carries ``gen_ai.request.model`` (the model) and ``session.id`` (the fleet's
key: the first server session id, stable across reconnects). OpenTelemetry is imported
when :func:`instrument` is called, never by ``import rxrealtime``; without it the call
raises :class:`~rxrealtime.ConfigError` naming the extra to install.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from reactivex.disposable import CompositeDisposable

from .._version import __version__
from ..billing import Rate
from ..diagnostics import Reconnected
from ..exceptions import ConfigError, RealtimeError
from ..fleet import Fleet, Keyed
from ..latency import GlassToGlass
from ..quality import LEVELS as QUALITY_LEVELS
from ..session import Session

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

__all__ = ["Instrumentation", "instrument"]

MODEL, SESSION = "gen_ai.request.model", "session.id"


class Instrumentation:
    """The instruments of one :func:`instrument` call; :meth:`dispose` (or leaving a
    ``with`` block) stops recording. A session given alone is watched through a fleet of
    its own, which is closed too."""

    def __init__(self, fleet: Fleet, own_fleet: bool, meter_provider: MeterProvider) -> None:
        from opentelemetry.metrics import Observation

        self.fleet, self._own_fleet, self._observation = fleet, own_fleet, Observation
        meter = meter_provider.get_meter("rxrealtime", __version__)
        self.billed = meter.create_counter(
            "rxrealtime.billed", unit="s", description="Billed generation seconds"
        )
        self.cost = meter.create_counter(
            "rxrealtime.cost", unit="1", description="Cost of the billed seconds"
        )
        self.reconnects = meter.create_counter(
            "rxrealtime.reconnects", unit="{reconnect}", description="Reconnects"
        )
        self.errors = meter.create_counter(
            "rxrealtime.errors", unit="{error}", description="Errors published on errors"
        )
        self.ack_latency = meter.create_histogram(
            "rxrealtime.ack.latency", unit="s", description="Request to its acknowledgement"
        )
        self._quality: dict[int, tuple[dict[str, str], Any]] = {}
        meter.create_observable_gauge(
            "rxrealtime.connection.quality", [self._observe_quality], unit="1",
            description="0 good, 1 fair, 2 poor, 3 critical",
        )  # fmt: skip
        self._latency: dict[int, tuple[dict[str, str], GlassToGlass]] = {}
        meter.create_observable_gauge(
            "rxrealtime.glass_to_glass.latency", [self._observe_latency], unit="s",
            description="Glass-to-glass latency of the generated video, by quantile",
        )  # fmt: skip
        meter.create_observable_gauge(
            "rxrealtime.time_to_first_frame", [self._observe_first_frame], unit="s",
            description="From a link's start to its first generated frame",
        )  # fmt: skip
        self._members: dict[int, CompositeDisposable] = {}
        self._subscriptions = CompositeDisposable(
            fleet.billed_deltas.subscribe(self._on_billed),
            fleet.errors.subscribe(self._on_error),
            fleet.totals.subscribe(lambda _: self._sync()),  # a session added later too
        )

    def _attributes(self, session: Session) -> dict[str, str]:
        return {MODEL: session.model.name, SESSION: self.fleet.key_of(session)}

    def _on_billed(self, k: Keyed[int]) -> None:
        attributes = {MODEL: k.model, SESSION: k.key}
        self.billed.add(k.value, attributes)
        price = self.fleet.price_of(k.model, k.tier)
        if price is not None:
            self.cost.add(float(price * k.value), attributes)

    def _on_error(self, k: Keyed[RealtimeError]) -> None:
        self.errors.add(1, {MODEL: k.model, SESSION: k.key, "error.type": type(k.value).__name__})

    def _sync(self) -> None:
        current = {id(s): s for s in self.fleet.sessions}
        for gone in set(self._members) - set(current):
            self._members.pop(gone).dispose()
            self._quality.pop(gone, None)
            self._latency.pop(gone, None)
        for ident, session in current.items():
            if ident not in self._members:
                self._members[ident] = self._watch(ident, session)

    def _watch(self, ident: int, session: Session) -> CompositeDisposable:
        def on_latency(latency: Any) -> None:
            attributes = {**self._attributes(session), "rxrealtime.ack.kind": latency.kind}
            self.ack_latency.record(latency.seconds, attributes)

        def on_diagnostic(event: Any) -> None:
            if isinstance(event, Reconnected):
                self.reconnects.add(1, self._attributes(session))

        def on_quality(quality: Any) -> None:
            self._quality[ident] = (self._attributes(session), quality)

        def on_stats(stats: Any) -> None:
            if stats.latency is not None:  # nothing measured: no point (never 0)
                self._latency[ident] = (self._attributes(session), stats.latency)

        watched: Iterable[tuple[str, Callable[[Any], None]]] = (
            ("ack_latencies", on_latency), ("diagnostics", on_diagnostic),
            ("quality", on_quality), ("stats", on_stats),
        )  # fmt: skip
        subscriptions = CompositeDisposable()
        for name, action in watched:
            stream = getattr(session, name, None)  # a replay or a test double may lack some
            if stream is not None:
                subscriptions.add(stream.subscribe(action))
        return subscriptions

    def _observe_quality(self, _: CallbackOptions) -> Iterable[Observation]:
        for attributes, quality in list(self._quality.values()):
            level = quality.level
            yield self._observation(
                QUALITY_LEVELS.index(level) if level in QUALITY_LEVELS else -1,
                {**attributes, "rxrealtime.quality.level": level,
                 "rxrealtime.quality.limiting": quality.limiting or "none"},
            )  # fmt: skip

    def _observe_latency(self, _: CallbackOptions) -> Iterable[Observation]:
        for attributes, latency in list(self._latency.values()):
            for quantile, seconds in (("0.5", latency.p50_s), ("0.9", latency.p90_s)):
                if seconds is not None:
                    yield self._observation(
                        seconds, {**attributes, "rxrealtime.latency.quantile": quantile,
                                  "rxrealtime.latency.source": latency.source or "none"},
                    )  # fmt: skip

    def _observe_first_frame(self, _: CallbackOptions) -> Iterable[Observation]:
        for attributes, latency in list(self._latency.values()):
            if latency.first_frame_s is not None:
                yield self._observation(latency.first_frame_s, attributes)

    def dispose(self) -> None:
        """Stop recording (the instruments stay registered with the meter provider)."""
        self._subscriptions.dispose()
        for subscriptions in self._members.values():
            subscriptions.dispose()
        self._members.clear()
        self._quality.clear()
        self._latency.clear()
        if self._own_fleet:
            self.fleet.close()

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()


def instrument(
    source: Session | Fleet,
    meter_provider: MeterProvider | None = None,
    *,
    rate_per_second: Rate | None = None,
    prices: Mapping[str, Rate] | None = None,
) -> Instrumentation:
    """Record ``source``'s billing, cost, reconnects, errors, ack latency, quality,
    glass-to-glass latency and time to first frame as OpenTelemetry metrics (the global
    meter provider unless one is given). A session is priced with ``rate_per_second`` or
    ``prices``; a fleet brings its own prices."""
    try:
        from opentelemetry import metrics
    except ImportError:
        raise ConfigError(
            "OpenTelemetry metrics need the otel extra: pip install 'rxrealtime[otel]'"
        ) from None
    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    if isinstance(source, Fleet):
        if rate_per_second is not None or prices is not None:
            raise ConfigError("a fleet brings its own prices: pass them to Fleet()")
        return Instrumentation(source, False, provider)
    fleet = Fleet([source], rate_per_second=rate_per_second, prices=prices)
    return Instrumentation(fleet, True, provider)
