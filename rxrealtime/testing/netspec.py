"""What an impaired network is, and the exact ``ip``/``tc``/``nft`` command lines that make it.

Pure on purpose: the spec parser (``loss=10%,rate=500kbit,blackhole=4s@8s``) and the
command builders are plain functions of values, so their rules are tested without root
and without a kernel; :mod:`.netns` only runs what these return.

The link is symmetric: the same loss and rate cap hold on both ends' egress, so each
direction sees them once (the media from the server and the camera from the client).
Loss drops a random share of UDP only (the WebRTC media; the WebSocket over TCP would
just retransmit and hide it); a blackhole drops every packet both ways, TCP too, the way
a Wi-Fi path that goes dark does.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from ..exceptions import ConfigError

__all__ = [
    "Blackhole",
    "Impairment",
    "LinkCounters",
    "LinkNames",
    "NetworkUnavailable",
    "SpecError",
    "format_rate",
    "nft_ruleset",
    "parse_counters",
    "parse_impairment",
    "parse_queue_drops",
    "parse_rate",
    "queue_stats_command",
    "setup_commands",
    "tc_commands",
    "teardown_commands",
]

NFT_TABLE = "rxrealtime_impair"
QUEUE = "500ms"
"""How much a capped link queues before it drops: Wi-Fi and mobile links queue deeply
(hundreds of ms), so a cap mostly shows as delay. With 200 ms, the keyframes and
retransmissions of a 320x180 stream under 10 % loss overflowed a 500 kbit/s queue and
doubled the loss a session measured (26 % for 10 % injected)."""
UDP_SENT = "udp-sent"
UDP_DROPPED = "udp-dropped"
DARK_DROPPED = "dark-dropped"
LOSS_SCALE = 10_000
"""``numgen random mod 10000 < N``: loss in basis points, so 2.5 % is exact."""

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)?\s*$", re.I)
_RATE_FACTOR = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9}
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$", re.I)


class SpecError(ConfigError):
    """An impairment spec that does not parse; the message names the part and the form."""


class NetworkUnavailable(ConfigError):
    """The impaired network cannot be made here: not root, a tool (``ip``, ``tc``, ``nft``)
    missing, or the kernel refused a namespace; the message says which and what to do."""


@dataclass(frozen=True)
class Blackhole:
    """Every packet dropped for ``seconds``, starting ``at_s`` after the network is up."""

    seconds: float
    at_s: float = 0.0


@dataclass(frozen=True)
class Impairment:
    """Loss (a fraction, 0 to 1) of UDP packets and a rate cap (bits/s) on each direction."""

    loss: float = 0.0
    rate_bps: int | None = None
    blackholes: tuple[Blackhole, ...] = field(default=())

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss <= 1.0:
            raise SpecError(f"loss must be between 0 and 1 (or 0% and 100%), not {self.loss}")
        if self.rate_bps is not None and self.rate_bps < 8_000:
            raise SpecError(f"rate must be at least 8kbit, not {self.rate_bps} bit/s")

    @property
    def loss_basis_points(self) -> int:
        return round(self.loss * LOSS_SCALE)

    def describe(self) -> str:
        """The spec back, in the form :func:`parse_impairment` reads."""
        parts = [f"loss={self.loss * 100:g}%"]
        if self.rate_bps is not None:
            parts.append(f"rate={format_rate(self.rate_bps)}")
        parts += [f"blackhole={b.seconds:g}s@{b.at_s:g}s" for b in self.blackholes]
        return ",".join(parts)


def parse_rate(text: str | int) -> int:
    """Bits per second from ``500kbit``, ``2mbit``, ``1.5Mbit`` or a plain number of bits/s.

    ``kbps``/``mbps`` are read as kilo/mega *bits* per second (what people mean when they
    say a link is 2 Mbps); tc's own ``kbps`` (kilobytes) is deliberately not followed.
    """
    if isinstance(text, int):
        return text
    match = _RATE.match(text)
    if match is None:
        raise SpecError(f"rate {text!r} is not a number with bit, kbit, mbit or gbit")
    unit = (match.group(2) or "bit").lower().replace("bps", "bit")
    return round(float(match.group(1)) * _RATE_FACTOR[unit])


def format_rate(bps: int) -> str:
    """The shortest exact tc rate for ``bps`` (``500kbit``, ``2mbit``, ``12345bit``)."""
    for unit, factor in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3)):
        if bps % factor == 0:
            return f"{bps // factor}{unit}"
    return f"{bps}bit"


def _seconds(text: str, what: str) -> float:
    match = _SECONDS.match(text)
    if match is None:
        raise SpecError(f"{what} {text!r} is not a duration such as 4s or 500ms")
    value = float(match.group(1))
    return value / 1000 if (match.group(2) or "s").lower() == "ms" else value


def _loss(text: str) -> float:
    text = text.strip()
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise SpecError(f"loss {text!r} is not a percentage (10%) or a fraction (0.1)") from None


def parse_impairment(spec: str) -> Impairment:
    """``loss=10%,rate=500kbit,blackhole=4s@8s`` (every part optional, blackhole repeatable).

    A blackhole without ``@`` starts at once. An empty spec is a perfect link.
    """
    loss, rate, holes = 0.0, None, []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or not value.strip():
            raise SpecError(f"{part!r}: expected key=value (loss, rate or blackhole)")
        if key == "loss":
            loss = _loss(value)
        elif key == "rate":
            rate = parse_rate(value)
        elif key == "blackhole":
            length, _, start = value.partition("@")
            at = _seconds(start, "blackhole start") if start else 0.0
            holes.append(Blackhole(_seconds(length, "blackhole length"), at))
        else:
            raise SpecError(f"unknown impairment {key!r}: expected loss, rate or blackhole")
    return Impairment(loss=loss, rate_bps=rate, blackholes=tuple(holes))


# -- the commands ----------------------------------------------------------------------


@dataclass(frozen=True)
class LinkNames:
    """The two namespaces, their veth ends and the addresses chosen for them.

    Both ends live in namespaces made for this link, so the fixed 10.200.0.0/30 can never
    clash with an address of the machine (nothing routes in or out of them).
    """

    server_ns: str
    client_ns: str
    server_dev: str
    client_dev: str
    server_addr: str = "10.200.0.1"
    client_addr: str = "10.200.0.2"
    prefix: int = 30

    @classmethod
    def unique(cls, token: str) -> LinkNames:
        """Names from ``token`` (a few hex digits); interface names stay under 16 bytes."""
        return cls(f"rxrt-{token}-srv", f"rxrt-{token}-cli", f"rxs{token}", f"rxc{token}")

    def ends(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """(namespace, device) of the server end, then of the client end."""
        return (self.server_ns, self.server_dev), (self.client_ns, self.client_dev)


def setup_commands(names: LinkNames) -> list[list[str]]:
    """Make both namespaces, the veth pair straight inside them, addresses, links up."""
    n = names
    cmds = [["ip", "netns", "add", n.server_ns], ["ip", "netns", "add", n.client_ns],
            ["ip", "-n", n.server_ns, "link", "add", n.server_dev, "type", "veth",
             "peer", "name", n.client_dev, "netns", n.client_ns]]  # fmt: skip
    for (ns, dev), addr in zip(n.ends(), (n.server_addr, n.client_addr), strict=True):
        cmds += [["ip", "-n", ns, "addr", "add", f"{addr}/{n.prefix}", "dev", dev],
                 ["ip", "-n", ns, "link", "set", dev, "up"],
                 ["ip", "-n", ns, "link", "set", "lo", "up"]]  # fmt: skip
    return cmds


def teardown_commands(names: LinkNames) -> list[list[str]]:
    """Deleting a namespace deletes its veth end, and with it the peer in the other."""
    return [["ip", "netns", "del", names.server_ns], ["ip", "netns", "del", names.client_ns]]


def tc_commands(ns: str, dev: str, rate_bps: int | None) -> list[list[str]]:
    """A token bucket on ``dev``'s egress (``replace``: the same line changes it mid-run).

    The burst is 20 ms of the rate but never below two full-size frames (tbf needs one
    frame at least, and a burst of one makes every frame of a video picture wait); the
    queue holds :data:`QUEUE` of the rate, so a cap shows as a lower bitrate and some
    delay, not as a queue that grows without end. No cap: the qdisc is deleted (``-``
    marks "may fail").
    """
    if rate_bps is None:
        return [["-", "tc", "-n", ns, "qdisc", "del", "dev", dev, "root"]]
    burst = max(rate_bps // 8 // 50, 3028)
    return [["tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "tbf",
             "rate", format_rate(rate_bps), "burst", str(burst), "latency", QUEUE]]  # fmt: skip


def nft_ruleset(loss: float, dark: bool, *, spare_loopback: bool = False) -> str:
    """One atomic nft transaction: the table (made if missing), its output chain flushed and
    refilled. Egress only: each namespace drops what it sends, so each direction is
    dropped once. ``dark``: everything is dropped (a blackhole). ``spare_loopback``: every
    rule skips what leaves by ``lo`` (two processes of one end talking to each other).

    Counters ride along (UDP packets offered, UDP packets dropped), so a test compares
    the loss a session measured with the loss the link *really* applied, not with the
    nominal share: the random drop of a few hundred packets is itself a sample. Flushing
    the chain resets them, so they count from the last change.
    """
    points = round(loss * LOSS_SCALE)
    rules = [f'meta l4proto udp counter comment "{UDP_SENT}"']
    if dark:
        rules.append(f'counter drop comment "{DARK_DROPPED}"')
    elif points >= LOSS_SCALE:
        rules.append(f'meta l4proto udp counter drop comment "{UDP_DROPPED}"')
    elif points > 0:
        rules.append(f"meta l4proto udp numgen random mod {LOSS_SCALE} < {points} "
                     f"counter drop comment \"{UDP_DROPPED}\"")  # fmt: skip
    only = 'oifname != "lo" ' if spare_loopback else ""
    lines = [
        f"add table inet {NFT_TABLE}",
        f"add chain inet {NFT_TABLE} out {{ type filter hook output priority 0; policy accept; }}",
        f"flush chain inet {NFT_TABLE} out",
        *(f"add rule inet {NFT_TABLE} out {only}{rule}" for rule in rules),
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class LinkCounters:
    """What one end's egress really did since the last change: UDP packets offered to the
    link, UDP packets its random loss dropped, packets of any kind a blackhole ate, and
    packets the rate cap's queue dropped because it was full (tc's ``drops``: nft sees a
    packet before the queue does, so these are among ``udp_sent`` but not ``udp_dropped``;
    nearly all are media, the WebSocket's few TCP segments aside)."""

    udp_sent: int = 0
    udp_dropped: int = 0
    dark_dropped: int = 0
    queue_dropped: int = 0

    @property
    def loss(self) -> float | None:
        """The share of UDP packets the random loss dropped (``None`` before any was sent)."""
        return self.udp_dropped / self.udp_sent if self.udp_sent else None

    @property
    def total_loss(self) -> float | None:
        """The share the link lost in all: its random drop plus its full queue's drops,
        what a receiver at the far end can measure (``None`` before any was sent)."""
        if not self.udp_sent:
            return None
        return min(1.0, (self.udp_dropped + self.queue_dropped) / self.udp_sent)

    def __add__(self, other: LinkCounters) -> LinkCounters:
        return LinkCounters(self.udp_sent + other.udp_sent,
                            self.udp_dropped + other.udp_dropped,
                            self.dark_dropped + other.dark_dropped,
                            self.queue_dropped + other.queue_dropped)  # fmt: skip

    def with_queue_drops(self, now: int, at_change: int) -> LinkCounters:
        """These counters with the queue's drops since the last change: tc's count
        ``now`` less its count ``at_change`` (tc keeps counting across a ``replace``;
        nft's counters restart at each change)."""
        return dataclasses.replace(self, queue_dropped=max(0, now - at_change))


def parse_counters(nft_json: str) -> LinkCounters:
    """The counters of :func:`nft_ruleset`'s rules from ``nft -j list table ...`` output."""
    import json

    found = {UDP_SENT: 0, UDP_DROPPED: 0, DARK_DROPPED: 0}
    for item in json.loads(nft_json).get("nftables", []):
        rule = item.get("rule")
        if not rule or rule.get("comment") not in found:
            continue
        for expr in rule.get("expr", []):
            if "counter" in expr:
                found[rule["comment"]] += int(expr["counter"].get("packets", 0))
    return LinkCounters(found[UDP_SENT], found[UDP_DROPPED], found[DARK_DROPPED])


def queue_stats_command(ns: str, dev: str) -> list[str]:
    """The qdisc statistics of ``dev`` in ``ns``, as JSON (read by :func:`parse_queue_drops`)."""
    return ["tc", "-n", ns, "-s", "-j", "qdisc", "show", "dev", dev]


def parse_queue_drops(tc_json: str) -> int:
    """Packets the root qdisc dropped (tc's ``drops``) from :func:`queue_stats_command`'s
    output; 0 when no cap is set (the default qdisc of a veth end drops nothing)."""
    import json

    text = tc_json.strip()
    if not text:
        return 0
    return sum(int(q.get("drops", 0)) for q in json.loads(text) if q.get("root", True))
