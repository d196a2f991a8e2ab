"""``rxrealtime demo --impair SPEC``: the demo through a real impaired network, and what the
session measured of it.

The network is :func:`rxrealtime.testing.impaired_network`: the embedded server on the
far end of a veth pair whose loss, rate cap and blackholes act below the application, so
the figures here are the session's own (its RTP counters and ``stats``), never the
injected ones echoed back. The spec is parsed before any I/O (a bad one is a
:class:`~rxrealtime.testing.SpecError`, a ``ConfigError``), and a machine that cannot
make the network (not root, no ``nft``/``tc``/``ip``) gets
:class:`~rxrealtime.testing.NetworkUnavailable` saying why, before anything starts.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from reactivex.disposable import CompositeDisposable

from ..diagnostics import Reconnected, VideoStall
from ..quality import ConnectionQuality, SessionStats, packet_loss_over
from ..server import EmbeddedServer
from ..session import Session
from ..testing import (
    ImpairedNetwork,
    Impairment,
    LinkCounters,
    NetworkUnavailable,
    missing_requirements,
    parse_impairment,
)

__all__ = ["NetworkWatch", "check_impairment", "impaired_server"]

logger = logging.getLogger(__name__)


def check_impairment(spec: str | Impairment) -> Impairment:
    """The parsed spec, or :class:`SpecError`; then :class:`NetworkUnavailable` when this
    machine cannot make the network. Both before any I/O, so a demo that cannot run
    impaired never starts a server or bills a second."""
    impairment = spec if isinstance(spec, Impairment) else parse_impairment(spec)
    why = missing_requirements()
    if why is not None:
        raise NetworkUnavailable(why)
    return impairment


@contextlib.asynccontextmanager
async def impaired_server(
    impairment: Impairment, **settings: Any
) -> AsyncIterator[tuple[ImpairedNetwork, EmbeddedServer]]:
    """The impaired veth pair and the embedded server on its far end; the calling thread
    is in the client namespace for the block (a socket opened here crosses the link, so
    open anything meant for this machine, such as the web page's listener, before)."""
    from ..testing import impaired_network

    async with impaired_network(spec=impairment) as net, net.serve(**settings) as server:
        logger.info("impaired network %s: server at %s", net.spec, net.server_addr)
        yield net, server


@dataclass
class NetworkWatch:
    """What the session measured of its network over the whole run.

    Everything comes from ``session.stats``, which the session samples anyway. Packet
    loss is the whole run's: the intervals' media packets (received and lost,
    retransmissions aside) summed, lost / (received + lost)
    (:func:`~rxrealtime.quality.packet_loss_over`). A mean of the intervals' ratios would
    weigh an interval of 5 packets like one of 80; their median is kept beside it for
    comparison with the tests (``loss_median``). The bitrate is bytes over time: the
    intervals' rates weighted by their length (= bytes received / seconds sampled).
    """

    spec: str
    samples: list[SessionStats] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)
    limiting: list[str] = field(default_factory=list)
    reconnects: int = 0
    downtime_s: float = 0.0
    stalls: int = 0
    stall_s: float = 0.0
    link: LinkCounters | None = None
    """What the link itself did to the media on its way here over the run (its nft and
    tc counters at the server end), read by the demo before the network goes: the truth
    the session's measured loss is compared with."""
    _subscriptions: CompositeDisposable = field(default_factory=CompositeDisposable)

    def start(self, session: Session) -> NetworkWatch:
        """Subscribe to the session's stats, quality and diagnostics."""
        self._subscriptions.add(session.stats.subscribe(self.samples.append))
        self._subscriptions.add(session.quality.subscribe(self._on_quality))
        self._subscriptions.add(session.diagnostics.subscribe(self._on_diagnostic))
        return self

    def stop(self) -> None:
        """Stop watching; the figures stay."""
        self._subscriptions.dispose()

    def _on_quality(self, verdict: ConnectionQuality) -> None:
        if verdict.level not in self.levels:
            self.levels.append(verdict.level)
        if verdict.limiting is not None and verdict.limiting not in self.limiting:
            self.limiting.append(verdict.limiting)

    def _on_diagnostic(self, event: Any) -> None:
        if isinstance(event, Reconnected):
            self.reconnects += 1
            self.downtime_s += event.downtime_s
        elif isinstance(event, VideoStall) and not event.ongoing:  # once, when it ends
            self.stalls += 1
            self.stall_s += event.seconds

    # -- the figures ---------------------------------------------------------------------

    @property
    def packets(self) -> tuple[int, int]:
        """(received, lost) media packets over the run."""
        received = sum(s.packets_received or 0 for s in self.samples)
        lost = sum(s.packets_lost or 0 for s in self.samples)
        return received, lost

    @property
    def packet_loss(self) -> float | None:
        """The whole run's loss (``None`` before any media packet was counted)."""
        return packet_loss_over(self.samples)

    @property
    def loss_median(self) -> float | None:
        """The median interval's loss: robust to a sparse interval, blind to a dark one
        (an interval with no packet reads 0)."""
        seen = [s.packet_loss for s in self.samples if s.packet_loss is not None]
        return statistics.median(seen) if seen else None

    def _rate(self, pick: str) -> float | None:
        """A figure over the run: each interval's value weighted by its length."""
        spans = [(v, s.interval_s) for s in self.samples if (v := getattr(s, pick)) is not None]
        seconds = sum(span for _, span in spans)
        return sum(v * span for v, span in spans) / seconds if seconds else None

    @property
    def inbound_bitrate_bps(self) -> float | None:
        return self._rate("inbound_bitrate_bps")

    @property
    def outbound_bitrate_bps(self) -> float | None:
        return self._rate("outbound_bitrate_bps")

    @property
    def inbound_fps(self) -> float | None:
        return self._rate("inbound_fps")

    def as_json(self) -> dict[str, Any]:
        """The ``network`` object of ``demo --json``; each figure says how it was made."""
        received, lost = self.packets

        def rounded(value: float | None, digits: int) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "impairment": self.spec,
            "packet_loss": rounded(self.packet_loss, 4),
            "packet_loss_method": "whole run: lost / (received + lost), the media packets "
            "of every stats interval summed",
            "packets_received": received,
            "packets_lost": lost,
            "packet_loss_median_interval": rounded(self.loss_median, 4),
            "inbound_bitrate_bps": rounded(self.inbound_bitrate_bps, 0),
            "outbound_bitrate_bps": rounded(self.outbound_bitrate_bps, 0),
            "bitrate_method": "bytes over time: the 1 s stats intervals weighted by length",
            "inbound_fps": rounded(self.inbound_fps, 2),
            "stats_intervals": len(self.samples),
            "quality_levels": self.levels,
            "limiting_factors": self.limiting,
            "reconnects": self.reconnects,
            "downtime_s": round(self.downtime_s, 3),
            "video_stalls": self.stalls,
            "video_stall_s": round(self.stall_s, 3),
            **({} if self.link is None else {"link": _link_json(self.link)}),
        }

    def describe(self) -> str:
        """One line for the human summary."""
        loss, median = self.packet_loss, self.loss_median
        rate = self.inbound_bitrate_bps
        received, lost = self.packets
        parts = [
            f"network {self.spec}: measured loss "
            + ("n/a" if loss is None else f"{loss:.1%} ({lost}/{received + lost} packets)")
            + ("" if median is None else f", median interval {median:.1%}"),
            "inbound " + ("n/a" if rate is None else f"{rate / 1000:.0f} kbit/s"),
            f"quality {' → '.join(self.levels) or 'n/a'}"
            + (f" (limited by {', '.join(self.limiting)})" if self.limiting else ""),
            f"{self.reconnects} reconnects",
        ]
        return "; ".join(parts)

    def describe_link(self) -> str | None:
        """What the link dropped, for the human summary (``None`` before it was read)."""
        link = self.link
        if link is None or link.total_loss is None:
            return None
        return (f"the link dropped {link.total_loss:.1%} of {link.udp_sent} packets toward "
                f"the client ({link.udp_dropped} at random, {link.queue_dropped} by its "
                f"full queue)")  # fmt: skip

    def rows(self) -> list[tuple[str, str]]:
        """Extra rows for the terminal view: the spec and the whole-run loss so far."""
        loss = self.packet_loss
        return [
            ("network", self.spec),
            ("loss (whole run)", "n/a" if loss is None else f"{loss:.1%}"),
        ]


def _link_json(link: LinkCounters) -> dict[str, Any]:
    loss, total = link.loss, link.total_loss
    return {
        "udp_sent": link.udp_sent,
        "random_dropped": link.udp_dropped,
        "queue_dropped": link.queue_dropped,
        "blackhole_dropped": link.dark_dropped,
        "random_loss": None if loss is None else round(loss, 4),
        "loss": None if total is None else round(total, 4),
        "method": "the link's own counters at the server end over the run: nft's UDP "
        "packets offered and randomly dropped, tc's drops of a full rate-cap queue",
    }
