"""The rules every aiortc video sender of ours runs with, installed in one call.

A sender is made in three places (the client's transceiver, the embedded server's
generated track, a viewer's copy of it), and each needs the same two rules in front of
aiortc's own behaviour: :mod:`.retransmit` (a NACKed packet is resent a bounded number
of times) and :mod:`.bitrate` (the encoder backs off on reported loss). One function, so a
new sender cannot get one rule and miss the other.
"""

from __future__ import annotations

from typing import Any

from . import bitrate, retransmit

__all__ = ["install_sender_rules"]


def install_sender_rules(sender: Any) -> None:
    """Both rules on aiortc ``sender``; each leaves it as it is where aiortc lacks the
    member it hooks."""
    retransmit.install(sender)
    bitrate.install(sender)
