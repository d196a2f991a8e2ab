"""The LiveKit transport through a real impaired network (issue 23 item 3, LiveKit row).

LiveKit's SDK (Rust, native) makes its sockets on threads of its own, started when it is
first used in a process: a client cannot be moved into a namespace within the test's
process, and the embedded server's own LiveKit participant shares that runtime. So both
ends run as processes inside the namespaces (``ImpairedNetwork.run``): ``rxrealtime serve
--media livekit --host 10.200.0.1`` on the server end (its livekit-server listens on that
address too, and needs no STUN or external IP), ``tests/impaired_livekit_client.py`` on
the client end. The embedded server's participant and livekit-server talk over the server
end's ``lo``; ``spare_loopback()`` keeps that leg whole, so the loss is the user's path's.

Needs root, ``ip``/``tc``/``nft`` and livekit-server: skips saying what is missing, fails
under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import loss_margin, wait_until
from conftest_livekit import require_livekit, skip_or_fail

from rxrealtime.quality import SessionStats, packet_loss_over
from rxrealtime.server.livekit_rooms import livekit_host
from rxrealtime.server.livekit_server import LiveKitServer, render_config
from rxrealtime.testing import ImpairedNetwork, impaired_network, missing_requirements
from rxrealtime.testing.netspec import nft_ruleset, parse_rate

CLIENT = Path(__file__).with_name("impaired_livekit_client.py")
PORT = 8765  # the namespaces are fresh: nothing else listens there
STAGES = ((0.0, None, 5.0), (0.10, None, 11.0), (0.0, "2mbit", 6.0), (0.0, "300kbit", 10.0))
"""Nominal loss, rate cap and seconds: under loss LiveKit's congestion control lowers the
bitrate (~120-380 kbit/s, 15-45 packets/s), so the lossy stage is the long one; the
capped stage is long enough for the sender to settle under the cap."""
BURST_MARGIN = 1.15
"""As in tests/test_cli_impair.py: the token bucket lets its rate through plus a burst."""
LINK_SLACK = 0.01
"""As in tests/test_impaired_network.py: the session's loss is compared with what the link
really dropped on the server end in the same stage (``conftest.loss_margin``), plus 1
point for what the link counts and the session's video RTP does not (RTCP, STUN,
LiveKit's padding probes and the SFU's retransmissions: dropped at the same rate, so they
move the share by sampling only). That margin alone is wide when the bitrate falls (8 %
over 150 packets: 10 points), so a lossy stage must also have seen a loss: none in 100
packets at 10 % is 0.9^100 = 3e-5, and an estimator that reads no loss (this transport
before) fails."""


# -- the pure part: everywhere ---------------------------------------------------------


def test_livekit_server_moves_to_a_concrete_address_and_stays_on_loopback_otherwise() -> None:
    lines = render_config(http_port=7880, udp_port=7882, host="10.200.0.1").splitlines()
    assert "bind_addresses: [10.200.0.1]" in lines and "  node_ip: 10.200.0.1" in lines
    assert "    includes: [10.200.0.1/32]" in lines
    assert "  use_external_ip: false" in lines  # nothing to discover on a closed link
    assert "  stun_servers: [127.0.0.1:9]" in lines  # still the client's own dead loopback
    assert "127.0.0.1" not in render_config(http_port=1, udp_port=2, host="10.200.0.1").replace(
        "[127.0.0.1:9]", "")  # fmt: skip
    assert "bind_addresses: [127.0.0.1]" in render_config(http_port=1, udp_port=2).splitlines()
    server = LiveKitServer("/bin/true", http_port=7880, udp_port=7882, host="10.200.0.1")
    assert server.url == "ws://10.200.0.1:7880" and server.http_url == "http://10.200.0.1:7880"
    assert LiveKitServer("/bin/true", http_port=7880, udp_port=7882).url == "ws://127.0.0.1:7880"
    assert livekit_host("10.200.0.1") == "10.200.0.1"
    for wildcard_or_name in ("0.0.0.0", "::", "localhost", "::1", "example.test"):
        assert livekit_host(wildcard_or_name) == "127.0.0.1"


def test_sparing_loopback_leaves_the_link_rules_as_they_were_on_the_veth() -> None:
    spared = nft_ruleset(0.10, dark=False, spare_loopback=True)
    rules = [line for line in spared.splitlines() if line.startswith("add rule")]
    assert len(rules) == 2 and all(' out oifname != "lo" meta l4proto udp ' in r for r in rules)
    assert nft_ruleset(0.10, dark=True, spare_loopback=True).count('oifname != "lo"') == 2
    assert spared.replace('oifname != "lo" ', "") == nft_ruleset(0.10, dark=False)


# -- the real link: root, ip, tc, nft, livekit-server -------------------------------------


@pytest.fixture
def tools() -> None:
    why = missing_requirements()
    if why is not None:
        skip_or_fail(why)
    require_livekit()


class Proc:
    """A process at one end, its JSON lines on stdout collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.text: list[str] = []
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            self.text.append(line)
            if line.startswith("{"):
                self.lines.append(json.loads(line))

    def of(self, kind: str) -> list[Any]:
        return [line[kind] for line in self.lines if kind in line]

    async def end(self, how: signal.Signals | None = None, timeout: float = 15.0) -> int:
        """Close stdin (the client's cue) or send ``how``; the exit code, once all is read."""
        if self.proc.returncode is None:
            if how is None:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            else:
                self.proc.send_signal(how)
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        await asyncio.wait_for(self._reader, 5)
        return code


@contextlib.asynccontextmanager
async def livekit_ends(net: ImpairedNetwork, tmp_path: Path) -> AsyncIterator[tuple[Proc, Proc]]:
    """``rxrealtime serve --media livekit`` on the server end, the client on the client end."""
    key = tmp_path / "api-key"
    key.write_text("impaired-livekit-key")
    url = f"ws://{net.server_addr}:{PORT}"
    logs = {end: open(tmp_path / f"{end}.log", "wb") for end in ("server", "client")}
    pipe = asyncio.subprocess.PIPE
    server = Proc(await net.run("server", [
        sys.executable, "-m", "rxrealtime.cli", "serve", "--media", "livekit",
        "--host", net.server_addr, "--port", str(PORT), "--api-key-file", str(key),
        "--tick-interval", "0.25"], stdout=pipe, stderr=logs["server"]))  # fmt: skip
    client: Proc | None = None
    try:
        await wait_until(lambda: any("listening on" in t for t in server.text), timeout=20)
        assert f"LiveKit at ws://{net.server_addr}:" in server.text[0]  # on the link, not lo
        client = Proc(await net.run("client", [sys.executable, str(CLIENT), url, str(key)],
                                    stdin=pipe, stdout=pipe, stderr=logs["client"]))  # fmt: skip
        await wait_until(lambda: len([s for s in client.of("stats") if s["frames_received"]]) >= 2,
                         timeout=25)  # fmt: skip
        yield server, client
    except BaseException:
        for end in ("server", "client"):
            log = (tmp_path / f"{end}.log").read_text(errors="replace")
            print(f"--- {end} log\n{log[-3000:]}")
        raise
    finally:
        if client is not None:
            await client.end()
        await server.end(signal.SIGTERM)
        for log in logs.values():
            log.close()


def stats_of(client: Proc, start: int) -> list[SessionStats]:
    return [SessionStats(**{k: v for k, v in s.items() if k != "latency"})
            for s in client.of("stats")[start:]]  # fmt: skip


async def test_livekit_loss_is_what_the_link_dropped_and_billing_stays_exact(
    tools: None, tmp_path: Path
) -> None:
    async with impaired_network() as net:
        await net.spare_loopback()
        async with livekit_ends(net, tmp_path) as (server, client):
            stages = {}
            for nominal, cap, seconds in STAGES:
                await (net.set(loss=nominal, uncapped=True) if cap is None
                       else net.set(loss=nominal, rate=cap))  # fmt: skip
                start = len(client.of("stats")) + 1  # the interval the change fell in is mixed
                await asyncio.sleep(seconds)
                truth = (await net.counters())["server"]  # the generated video on its way out
                stages[(nominal, cap)] = (truth, stats_of(client, start))
        summary = client.of("summary")
        billed = server.of("billed_s")
    assert summary and billed, (client.text[-3:], server.text[-3:])
    for (nominal, cap), (truth, stage) in stages.items():
        measured = packet_loss_over(stage)
        packets = sum((s.packets_received or 0) + (s.packets_lost or 0) for s in stage)
        real = truth.total_loss or 0.0  # random drop and the cap's full queue
        margin = loss_margin(real, packets, LINK_SLACK)
        fps = sum(s.inbound_fps for s in stage) / len(stage)
        kbps = sum(s.inbound_bitrate_bps or 0 for s in stage) / len(stage) / 1e3
        rtts = [s.rtt_s for s in stage if s.rtt_s is not None]
        print(f"LiveKit loss {nominal:.0%}, cap {cap}: link dropped {real:.1%} of "
              f"{truth.udp_sent} ({truth.queue_dropped} by the queue), "
              f"session measured {measured:.1%} of {packets} packets (margin {margin:.1%}), "
              f"{fps:.1f} fps, {kbps:.0f} kbit/s, rtt {max(rtts, default=None)}")  # fmt: skip
        assert measured is not None and abs(measured - real) <= margin, (nominal, stage)
        if nominal > 0:
            assert packets >= 100 and measured > 0, (packets, measured)
        assert fps >= 5 and kbps > 0  # video still arrives
        if cap is not None:  # LiveKit's sender settles under the cap (the mean of the stage)
            assert kbps * 1e3 <= parse_rate(cap) * BURST_MARGIN, (kbps, stage)
    (client_total,) = summary
    print(f"billed: client {client_total['billed_s']} s, server {billed[0]} s; {client_total}")
    assert client_total["billed_s"] == billed[0] > 0  # not a second lost or doubled


@pytest.mark.parametrize(("dark_s", "resume_within_s"), [(5.0, 15.0), (30.0, 45.0)])
async def test_livekit_survives_a_blackhole_with_billing_continuous(
    tools: None, tmp_path: Path, dark_s: float, resume_within_s: float
) -> None:
    """The path goes dark for 5 s (ridden out) or 30 s (past the heartbeat: the session
    reconnects): the video stalls and resumes (the stall is in its stats), and the
    client's billed total is the server's, whatever the policy did."""
    async with impaired_network() as net:
        await net.spare_loopback()
        async with livekit_ends(net, tmp_path) as (server, client):
            await net.blackhole(dark_s)  # back by itself after dark_s
            dark_from = len(client.of("stats"))
            await asyncio.sleep(dark_s)
            after = len(client.of("stats"))

            def resumed_at() -> int | None:  # the first interval wholly after the dark
                seen = client.of("stats")
                return next((i for i in range(after + 1, len(seen))
                             if seen[i]["inbound_fps"] >= 5), None)  # fmt: skip

            await wait_until(lambda: resumed_at() is not None, timeout=resume_within_s)
            dark = stats_of(client, dark_from)[: (resumed_at() or 0) - dark_from]
        (summary,) = client.of("summary")
        (billed,) = server.of("billed_s")
    stalls = stats_of(client, 0)[-1]
    print(f"LiveKit blackhole {dark_s:g} s: {len(dark)} intervals until video resumed, fps "
          f"{[s.inbound_fps for s in dark]}, stalls {stalls.freezes} ({stalls.freeze_s} s), "
          f"server sessions {summary['server_sessions']}, billed client {summary['billed_s']}"
          f" s / server {billed} s")  # fmt: skip
    assert min(s.inbound_fps for s in dark) < 1  # it really went dark
    assert stalls.freezes >= 1 and stalls.freeze_s >= dark_s - 1.5  # and the session saw it
    assert summary["billed_s"] == billed > 0
