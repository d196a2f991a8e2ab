"""Real network faults below the application (issue 23): a veth pair between two fresh
namespaces, loss from nftables, a rate cap from tc, blackholes; the session measures them
from its own RTP statistics, and billing stays exact through them.

The spec and the command lines are pure and tested everywhere. The link itself needs root
and ``ip``, ``tc`` and ``nft``: without them those tests skip saying what is missing (the
matrix entries, a laptop), and fail under ``CI=true`` (``make test`` installs nftables).
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable

import pytest
from conftest import wait_until
from conftest_livekit import skip_or_fail

import rxrealtime as rt
from rxrealtime import operators as rto
from rxrealtime.quality import SessionStats
from rxrealtime.testing import (
    Blackhole,
    Impairment,
    NetworkUnavailable,
    SpecError,
    impaired_network,
    missing_requirements,
    parse_impairment,
)
from rxrealtime.testing.netspec import LinkNames, format_rate, nft_ruleset, parse_rate, tc_commands

# -- the pure part: everywhere ---------------------------------------------------------


def test_the_spec_parses_every_part() -> None:
    spec = parse_impairment("loss=10%,rate=500kbit,blackhole=4s@8s,blackhole=500ms")
    assert spec == Impairment(loss=0.10, rate_bps=500_000,
                              blackholes=(Blackhole(4.0, 8.0), Blackhole(0.5, 0.0)))  # fmt: skip
    assert parse_impairment("") == Impairment()
    assert parse_impairment("loss=0.025").loss_basis_points == 250
    assert parse_impairment(spec.describe()) == spec  # describe() reads back


@pytest.mark.parametrize(
    "bad", ["loss", "loss=ten", "loss=120%", "rate=fast", "rate=1kbit", "delay=20ms",
            "blackhole=4x"],
)  # fmt: skip
def test_a_bad_spec_names_what_is_wrong(bad: str) -> None:
    with pytest.raises(SpecError):
        parse_impairment(bad)
    assert issubclass(SpecError, rt.ConfigError)


def test_rates_read_as_bits_and_render_exactly() -> None:
    assert parse_rate("2mbit") == parse_rate("2Mbps") == 2_000_000
    assert parse_rate("1.5mbit") == 1_500_000
    rendered = [format_rate(b) for b in (500_000, 2_000_000, 12_345)]
    assert rendered == ["500kbit", "2mbit", "12345bit"]


def test_the_commands_act_inside_the_namespaces_only() -> None:
    names = LinkNames.unique("abc123")
    assert len(names.server_dev) < 16 and len(names.client_dev) < 16
    cap = tc_commands(names.server_ns, names.server_dev, 300_000)
    assert cap == [["tc", "-n", names.server_ns, "qdisc", "replace", "dev", names.server_dev,
                    "root", "tbf", "rate", "300kbit", "burst", "3028",
                    "latency", "200ms"]]  # fmt: skip
    assert tc_commands("ns", "dev", None)[0][0] == "-"  # no cap: deleting may fail
    lossy = nft_ruleset(0.10, dark=False)
    assert "meta l4proto udp numgen random mod 10000 < 1000 drop" in lossy
    assert "flush chain" in lossy  # a change replaces the rules in one transaction
    assert "add rule inet rxrealtime_impair out drop" in nft_ruleset(0.10, dark=True)
    assert "drop" not in nft_ruleset(0.0, dark=False)


# -- the real link: root, ip, tc, nft ----------------------------------------------------


@pytest.fixture
def network_tools() -> None:
    why = missing_requirements()
    if why is not None:
        skip_or_fail(why)


def test_without_the_tools_the_error_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rxrealtime.testing.netns.missing_requirements", lambda: "need root")

    async def enter() -> None:
        async with impaired_network(loss=0.1):
            pass

    with pytest.raises(NetworkUnavailable, match="need root"):
        asyncio.run(enter())


def track(width: int = 320, height: int = 180) -> rt.media.SyntheticTrack:
    return rt.media.SyntheticTrack(width=width, height=height, fps=15)


def steady(samples: list[SessionStats], since: int, pick: Callable[[SessionStats], float | None]
           ) -> list[float]:  # fmt: skip
    return [v for s in samples[since:] if (v := pick(s)) is not None]


LOSS_WINDOW_S = 9.0
LOSS_MARGIN = 0.06
"""The first two 1 s intervals are left out (they hold the start: few packets, keyframes
resent). The figure is the median of the intervals' loss, not their mean: an interval
where the loop stalled holds few packets, and one lost packet there reads as 30-40 %
(seen). 640x360 at 15 fps gives each interval ~50-80 media packets, so one interval's
share of a 10 % random drop has a standard deviation of ~4 points and the median of 6-7
such a bit more than half that; 6 points is about 3 of those."""


async def test_injected_loss_is_what_the_session_measures(network_tools: None) -> None:
    async with impaired_network(loss=0.10) as net, net.serve(tick_interval_s=0.25) as server:
        session = rt.Session(server.url, api_key=server.api_key)
        samples: list[SessionStats] = []
        session.stats.subscribe(samples.append)
        async with session.connect(local_track=track(640, 360), prompt="rain"):
            await asyncio.sleep(LOSS_WINDOW_S)
        seen = steady(samples, 2, lambda s: s.packet_loss)
        loss = statistics.median(seen)
        print(f"injected 10 % loss, measured {loss:.3f} over {len(samples)} s")
        assert abs(loss - 0.10) <= LOSS_MARGIN, (seen, samples[-1])
        assert statistics.fmean(s.inbound_fps for s in samples[1:]) > 5  # video still plays


CAP = 120_000
"""Well under the ~250 kbit/s the uncapped 320x180 stream takes on this link."""


async def test_a_rate_cap_lowers_the_measured_bitrate(network_tools: None) -> None:
    async with impaired_network() as net, net.serve(tick_interval_s=0.25) as server:
        session = rt.Session(server.url, api_key=server.api_key)
        samples: list[SessionStats] = []
        session.stats.subscribe(samples.append)
        async with session.connect(local_track=track(), prompt="rain"):
            await wait_until(lambda: len(samples) >= 4)
            free = statistics.fmean(steady(samples, 1, lambda s: s.inbound_bitrate_bps))
            capped_from = len(samples) + 1  # the first interval after the cap is mixed
            await net.set(rate=CAP)
            await wait_until(lambda: len(samples) >= capped_from + 4)
        capped = statistics.fmean(steady(samples, capped_from, lambda s: s.inbound_bitrate_bps))
        print(f"inbound {free / 1000:.0f} kbit/s free, {capped / 1000:.0f} kbit/s under a "
              f"{CAP // 1000} kbit/s cap")  # fmt: skip
        # the bucket lets at most its rate through, plus one burst (3 kB) an interval
        assert capped <= CAP * 1.15
        assert capped < free * 0.7


async def test_a_blackhole_is_survived_and_billing_stays_continuous(network_tools: None) -> None:
    async with impaired_network() as net, net.serve(tick_interval_s=0.25) as server:
        retry = rt.ReconnectPolicy(initial_delay_s=0.2, max_delay_s=1)
        session = rt.Session(server.url, api_key=server.api_key, reconnect=retry)
        totals: list[int] = []
        session.generation_ticks.pipe(
            rto.billed_seconds(resets=session.session_started)
        ).subscribe(totals.append)
        frames: list[object] = []
        session.frames.subscribe(frames.append)
        async with session.connect(local_track=track(), prompt="rain"):
            await wait_until(lambda: bool(totals) and totals[-1] >= 2)
            await net.blackhole(4.0)
            await wait_until(lambda: not net.dark, timeout=8)
            billed_at_restore, frames_at_restore = totals[-1], len(frames)
            # recovers: ticks bill again and video plays again (TCP retransmits, ICE holds)
            await wait_until(lambda: totals[-1] >= billed_at_restore + 2, timeout=20)
            await wait_until(lambda: len(frames) >= frames_at_restore + 15, timeout=20)
            assert session.state is rt.ConnectionState.GENERATING
            started = len(server.billed_by_session) + len(server.sessions)
        await wait_until(lambda: len(server.billed_by_session) >= started, timeout=10)
        print(f"billed {totals[-1]} s, server {dict(server.billed_by_session)}")
        assert totals[-1] == sum(server.billed_by_session.values())
