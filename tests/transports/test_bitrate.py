"""A video sender backs off on reported loss (GCC's loss-based rule) and never aims above
the receiver's REMB: the rule alone (no socket), then in front of a sender's RTCP handler
with aiortc's own RTCP packets and VP8 encoder."""

from __future__ import annotations

import asyncio

import pytest
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    pack_remb_fci,
)

from rxrealtime.transports.bitrate import LossBasedRate, install

SSRC = 0x1234


def test_loss_above_ten_percent_cuts_by_half_of_it_low_loss_grows_between_holds() -> None:
    rate = LossBasedRate(400_000)
    assert rate.on_report(0.20) == 360_000  # x (1 - 0.5 * 0.2)
    assert rate.on_report(0.05) == 360_000  # 2-10 %: held
    assert rate.on_report(0.10) == 360_000  # 10 % itself is not above 10 %
    assert rate.on_report(0.0) == 378_000  # x 1.05
    assert (rate.reports, rate.decreases) == (4, 1)


def test_the_target_is_the_lower_of_loss_and_remb_within_the_bounds() -> None:
    rate = LossBasedRate(500_000, min_bps=200_000, max_bps=600_000)
    assert rate.on_remb(300_000) == 300_000  # delay says less than loss does
    assert rate.on_remb(2_000_000) == 500_000  # loss says less than delay does
    for _ in range(20):
        rate.on_report(0.0)
    assert rate.loss_bps == 600_000  # grows no further than max_bps
    for _ in range(50):
        rate.on_report(1.0)
    assert rate.target_bps == 200_000  # and falls no lower than min_bps


def test_steady_random_loss_above_the_threshold_settles_at_the_floor() -> None:
    """A link that drops 12 % at random however little is sent: the rule cannot tell it
    from congestion (GCC cannot either) and settles low rather than feed a full queue."""
    rate = LossBasedRate(500_000)
    targets = [rate.on_report(0.12) for _ in range(30)]
    assert targets == sorted(targets, reverse=True) and targets[-1] == rate.min_bps


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_a_report_out_of_range_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="fraction_lost"):
        LossBasedRate().on_report(bad)


def test_bounds_that_cannot_hold_are_refused() -> None:
    with pytest.raises(ValueError, match="min_bps"):
        LossBasedRate(100_000, min_bps=200_000)


class Sender:
    """What the rule needs of an aiortc 1.x sender: its RTCP handler, SSRC and encoder."""

    def __init__(self) -> None:
        self._ssrc = SSRC
        self._RTCRtpSender__encoder = Vp8Encoder()
        self.handled: list[object] = []

    async def _handle_rtcp_packet(self, packet: object) -> None:
        self.handled.append(packet)  # aiortc's own handling (REMB sets the encoder there)


def report(fraction_lost: float, ssrc: int = SSRC) -> RtcpRrPacket:
    info = RtcpReceiverInfo(ssrc=ssrc, fraction_lost=round(fraction_lost * 256), packets_lost=0,
                            highest_sequence=0, jitter=0, lsr=0, dlsr=0)  # fmt: skip
    return RtcpRrPacket(ssrc=99, reports=[info])


def remb(bitrate: int, ssrcs: list[int]) -> RtcpPsfbPacket:
    return RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=99, media_ssrc=0,
                          fci=pack_remb_fci(bitrate, ssrcs))  # fmt: skip


def test_installed_the_encoder_follows_reports_and_remb_of_its_own_stream() -> None:
    async def feed() -> tuple[Sender, LossBasedRate, list[int]]:
        sender = Sender()
        rule = install(sender)
        assert rule is not None
        targets = []
        packets = [report(0.25), report(0.25, ssrc=7), remb(1_000_000, [SSRC]),
                   remb(100_000, [7]), RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=99, media_ssrc=SSRC),
                   report(0.0)]  # fmt: skip
        for packet in packets:
            await sender._handle_rtcp_packet(packet)
            targets.append(sender._RTCRtpSender__encoder.target_bitrate)
        return sender, rule, targets

    sender, rule, targets = asyncio.run(feed())
    assert len(sender.handled) == 6  # aiortc's handler still sees every packet
    # 25 % reported: the 300k start x 0.875; another stream's report, a PLI: unchanged; our REMB of
    # 1 Mbit/s does not lift it; another stream's REMB is not ours; low loss: x 1.05
    assert targets == [262_500, 262_500, 262_500, 262_500, 262_500, 275_625]
    assert rule.remb_bps == 1_000_000 and rule.reports == 2


def test_a_sender_without_the_members_is_left_as_it_is() -> None:
    assert install(object()) is None
