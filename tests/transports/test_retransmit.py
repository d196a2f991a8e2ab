"""A NACKed packet is resent at most once per gap and a bounded number of times: the rule
alone (no socket), then in front of a sender's resend method."""

from __future__ import annotations

import asyncio

from rxrealtime.transports.retransmit import TRACKED, RetransmitGate, install


def test_a_packet_is_resent_once_per_gap_and_at_most_max_tries() -> None:
    gate = RetransmitGate(min_gap_s=0.25, max_tries=2)
    asked = [(7, 0.0), (7, 0.1), (8, 0.1), (7, 0.3), (7, 0.9), (8, 0.2)]
    assert [gate.allow(seq, at) for seq, at in asked] == [True, False, True, True, False, False]
    assert gate.refused == 3


def test_old_sequence_numbers_are_forgotten_so_a_reused_one_is_resent() -> None:
    gate = RetransmitGate(min_gap_s=0.25, max_tries=1)
    assert gate.allow(1, 0.0) and not gate.allow(1, 1.0)
    for seq in range(2, TRACKED + 2):  # 512 newer packets resent since
        gate.allow(seq, 2.0)
    assert gate.allow(1, 3.0)  # number 1 again, 65,536 packets later: a new packet


def test_installed_it_holds_back_a_nack_storm() -> None:
    class Sender:
        def __init__(self) -> None:
            self.resent: list[int] = []

        async def _retransmit(self, sequence_number: int) -> None:
            self.resent.append(sequence_number)

    async def storm() -> list[int]:
        sender = Sender()
        assert install(sender)
        for _ in range(10):  # the same three packets NACKed again at every new gap
            for seq in (5, 6, 7):
                await sender._retransmit(seq)
        return sender.resent

    assert asyncio.run(storm()) == [5, 6, 7]
    assert not install(object())  # nothing to gate: left as it is
