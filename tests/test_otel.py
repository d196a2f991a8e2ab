"""OpenTelemetry metrics, read back with the SDK's InMemoryMetricReader."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import rxrealtime as rt
from rxrealtime import protocol as p
from rxrealtime.diagnostics import Reconnected
from rxrealtime.latency import GlassToGlass
from rxrealtime.quality import ConnectionQuality, SessionStats
from rxrealtime.session import AckLatency

pytest.importorskip("opentelemetry.sdk", reason="pip install 'rxrealtime[otel]' (dev extra)")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from rxrealtime.dashboards.otel import instrument


def points(reader: InMemoryMetricReader) -> dict[str, tuple[str, list[Any]]]:
    """Every metric by name: its unit and its data points."""
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: (metric.unit or "", list(metric.data.data_points))
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


def test_instrument_records_billing_cost_reconnects_latency_and_quality() -> None:
    reader = InMemoryMetricReader()
    fleet = rt.Fleet(rate_per_second="0.01")
    session = rt.Session("ws://127.0.0.1:9", api_key="k", model="lucy-2.6")
    fleet.add(session, key="s1")
    with instrument(fleet, MeterProvider(metric_readers=[reader])):
        for seconds in (1, 2, 2, 5):  # a duplicate bills nothing
            session.generation_ticks.emit(p.GenerationTick(seconds))
        session.diagnostics.emit(Reconnected(attempts=2, downtime_s=1.5))
        session.ack_latencies.emit(AckLatency("prompt", 0.02))
        session.errors.emit(rt.ServerError("boom"))
        session.quality.emit(
            ConnectionQuality(level="poor", limiting="rtt", rtt_s=0.4, inbound_fps=15.0)
        )
        got = points(reader)
    attributes = {"gen_ai.request.model": "lucy-2.6", "session.id": "s1"}
    unit, (billed,) = got["rxrealtime.billed"]
    assert unit == "s" and billed.value == 5 and dict(billed.attributes) == attributes
    assert got["rxrealtime.cost"][1][0].value == pytest.approx(0.05)
    assert got["rxrealtime.reconnects"][1][0].value == 1
    (error,) = got["rxrealtime.errors"][1]
    assert error.value == 1 and error.attributes["error.type"] == "ServerError"
    unit, (latency,) = got["rxrealtime.ack.latency"]
    assert unit == "s" and latency.count == 1 and latency.sum == pytest.approx(0.02)
    assert latency.attributes["rxrealtime.ack.kind"] == "prompt"
    (quality,) = got["rxrealtime.connection.quality"][1]
    assert quality.value == 2 and quality.attributes["rxrealtime.quality.level"] == "poor"
    assert quality.attributes["session.id"] == "s1"


def test_a_session_alone_is_priced_and_stops_recording_when_disposed() -> None:
    reader = InMemoryMetricReader()
    session = rt.Session("ws://127.0.0.1:9", api_key="k", model="lucy-2.6")
    recording = instrument(session, MeterProvider(metric_readers=[reader]), rate_per_second="1")
    session.generation_ticks.emit(p.GenerationTick(3))
    recording.dispose()
    session.generation_ticks.emit(p.GenerationTick(9))
    got = points(reader)
    assert got["rxrealtime.billed"][1][0].value == 3
    assert got["rxrealtime.cost"][1][0].value == 3.0
    with pytest.raises(rt.ConfigError, match="own prices"):
        instrument(rt.Fleet(), rate_per_second="1")


def test_opentelemetry_loads_only_when_instrumenting(monkeypatch: pytest.MonkeyPatch) -> None:
    code = (
        "import sys, rxrealtime, rxrealtime.dashboards, rxrealtime.dashboards.otel; "
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    session = rt.Session("ws://127.0.0.1:9", api_key="k", model="lucy-2.6")
    with pytest.raises(rt.ConfigError, match=r"rxrealtime\[otel\]"):
        instrument(session)


def test_instrument_records_glass_to_glass_latency_and_time_to_first_frame() -> None:
    reader = InMemoryMetricReader()
    fleet = rt.Fleet()
    measured = rt.Session("ws://127.0.0.1:9", api_key="k", model="lucy-2.6")
    blind = rt.Session("ws://127.0.0.1:9", api_key="k", model="lucy-2.6")
    fleet.add(measured, key="a")
    fleet.add(blind, key="b")
    latency = GlassToGlass(first_frame_s=0.84, p50_s=0.042, p90_s=0.0615, samples=120,
                           source="frame-metadata")  # fmt: skip
    with instrument(fleet, MeterProvider(metric_readers=[reader])):
        measured.stats.emit(SessionStats(1.0, 30.0, 30.0, latency=latency))
        blind.stats.emit(SessionStats(1.0, 30.0, 30.0))  # nothing measured: no point, not 0
        got = points(reader)
    unit, quantiles = got["rxrealtime.glass_to_glass.latency"]
    by_quantile = {q.attributes["rxrealtime.latency.quantile"]: q for q in quantiles}
    assert unit == "s" and set(by_quantile) == {"0.5", "0.9"}
    assert (by_quantile["0.5"].value, by_quantile["0.9"].value) == (0.042, 0.0615)
    assert by_quantile["0.5"].attributes["rxrealtime.latency.source"] == "frame-metadata"
    assert by_quantile["0.9"].attributes["session.id"] == "a"
    unit, (first,) = got["rxrealtime.time_to_first_frame"]
    assert unit == "s" and first.value == 0.84
    assert dict(first.attributes) == {"gen_ai.request.model": "lucy-2.6", "session.id": "a"}


def test_a_latency_without_samples_records_only_the_first_frame() -> None:
    reader = InMemoryMetricReader()
    session = rt.Session("ws://127.0.0.1:9", api_key="k", model="lucy-2.6")
    with instrument(session, MeterProvider(metric_readers=[reader])):
        session.stats.emit(SessionStats(1.0, 30.0, 30.0, latency=GlassToGlass(first_frame_s=1.5)))
        got = points(reader)
    assert got["rxrealtime.time_to_first_frame"][1][0].value == 1.5
    assert not got.get("rxrealtime.glass_to_glass.latency", ("s", []))[1]
