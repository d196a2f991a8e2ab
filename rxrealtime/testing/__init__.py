"""Test tools that act below the application: a real impaired network for a session.

:func:`impaired_network` makes two network namespaces joined by a veth pair, with packet
loss (nftables), a rate cap (tc) and blackholes on the link, and runs the embedded
server on one end while the caller's thread is on the other. It needs root and the
``ip``, ``tc`` and ``nft`` commands (:func:`missing_requirements` says what is missing).
The spec and the command lines are pure (:mod:`.netspec`), tested without root.
Nothing else in the package imports this layer: it may use the server and sessions.
"""

from __future__ import annotations

from .netns import ImpairedNetwork, impaired_network, missing_requirements
from .netspec import (
    Blackhole,
    Impairment,
    LinkCounters,
    NetworkUnavailable,
    SpecError,
    parse_impairment,
)

__all__ = [
    "Blackhole",
    "ImpairedNetwork",
    "Impairment",
    "LinkCounters",
    "NetworkUnavailable",
    "SpecError",
    "impaired_network",
    "missing_requirements",
    "parse_impairment",
]
