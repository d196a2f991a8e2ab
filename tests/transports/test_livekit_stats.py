"""The mapping from LiveKit's stats records to a session's media counters, on records built
by hand (no server): which records count, which do not, and what an empty report gives."""

from __future__ import annotations

import pytest

stats = pytest.importorskip("livekit.rtc").stats  # LiveKit's public alias of its stats proto

from rxrealtime.quality import MediaCounters, StatsSampler  # noqa: E402
from rxrealtime.transports.livekit_stats import media_counters  # noqa: E402

S = stats.RtcStats


def inbound(ssrc: int, received: int, lost: int, nbytes: int, kind: str = "video",
            jitter: float = 0.004) -> S:  # fmt: skip
    return S(inbound_rtp=S.InboundRtp(
        rtc=stats.RtcStatsData(id=f"IT01V{ssrc}"),
        stream=stats.RtpStreamStats(ssrc=ssrc, kind=kind),
        received=stats.ReceivedRtpStreamStats(packets_received=received, packets_lost=lost,
                                              jitter=jitter),
        inbound=stats.InboundRtpStreamStats(bytes_received=nbytes, rtx_ssrc=ssrc + 1,
                                            retransmitted_packets_received=7),
    ))  # fmt: skip


def outbound(ssrc: int, nbytes: int, frames: int = 0, kind: str = "video") -> S:
    return S(outbound_rtp=S.OutboundRtp(
        rtc=stats.RtcStatsData(id=f"OT01V{ssrc}"),
        stream=stats.RtpStreamStats(ssrc=ssrc, kind=kind),
        sent=stats.SentRtpStreamStats(bytes_sent=nbytes, packets_sent=nbytes // 1000),
        outbound=stats.OutboundRtpStreamStats(frames_sent=frames),
    ))  # fmt: skip


def pair(pid: str, rtt: float, *, nominated: bool = True, responses: int = 3,
         local: str = "L1") -> S:  # fmt: skip
    return S(candidate_pair=S.CandidatePair(
        rtc=stats.RtcStatsData(id=pid),
        candidate_pair=stats.CandidatePairStats(
            local_candidate_id=local, nominated=nominated, responses_received=responses,
            state=stats.IceCandidatePairState.PAIR_SUCCEEDED, current_round_trip_time=rtt),
    ))  # fmt: skip


def transport(selected: str) -> S:
    chosen = stats.TransportStats(selected_candidate_pair_id=selected)
    return S(transport=S.Transport(rtc=stats.RtcStatsData(id="T01"), transport=chosen))


def local(cid: str, kind: int) -> S:
    candidate = stats.IceCandidateStats(candidate_type=kind)
    return S(local_candidate=S.LocalCandidate(rtc=stats.RtcStatsData(id=cid), candidate=candidate))


def test_the_generated_video_inbound_the_published_video_and_the_selected_pair() -> None:
    generated = [inbound(100, 900, 100, 450_000), inbound(100, 900, 100, 450_000),  # twice
                 inbound(300, 50, 5, 2_000, kind="audio"),
                 pair("CPa", 0.030), pair("CPb", 0.250, local="L2"), transport("CPb"),
                 local("L2", stats.IceCandidateType.RELAY)]  # fmt: skip
    room = [*generated, inbound(200, 500, 0, 999_999),  # another participant's video: not ours
            outbound(400, 120_000, frames=90), outbound(400, 120_000, frames=90),  # both lists
            outbound(500, 8_000, kind="audio")]  # fmt: skip
    counters = media_counters(room, generated, frames_sent=95)
    assert counters == MediaCounters(
        frames_sent=95, bytes_received=450_000, bytes_sent=120_000, packets_received=900,
        packets_lost=100, jitter_s=0.004, rtt_s=0.250, candidate_pair="relay",
    )  # fmt: skip
    # without a count of its own, the transport takes the encoder's
    assert media_counters(room, generated).frames_sent == 90


def test_two_generated_streams_add_up_and_the_worst_jitter_stands() -> None:
    generated = [inbound(1, 100, 10, 5_000, jitter=0.002), inbound(2, 300, 0, 15_000, jitter=0.01)]
    counters = media_counters([], generated)
    assert (counters.packets_received, counters.packets_lost, counters.bytes_received) == (
        400, 10, 20_000)  # fmt: skip
    assert counters.jitter_s == 0.01


def test_without_a_selected_pair_the_nominated_succeeded_one_and_no_rtt_before_a_response() -> None:
    assert media_counters([pair("CPa", 0.07, nominated=False), pair("CPb", 0.02)], []).rtt_s == 0.02
    assert media_counters([pair("CPa", 0.0, responses=0)], []).rtt_s is None  # never measured
    assert media_counters([pair("CPa", 0.5, nominated=False)], []).rtt_s is None  # not in use


def test_an_empty_report_knows_nothing_rather_than_zero() -> None:
    counters = media_counters([], [], frames_sent=4)
    assert counters == MediaCounters(frames_sent=4)  # None: unknown, not "no loss"
    assert counters.packets_lost is None and counters.bytes_received is None


def test_the_sampler_turns_two_samples_into_the_loss_of_the_interval() -> None:
    sampler = StatsSampler()
    sampler.sample(media_counters([], [inbound(1, 1_000, 20, 100_000)]), now=1.0)
    later = sampler.sample(media_counters([], [inbound(1, 1_270, 50, 225_000)]), now=2.0)
    assert later is not None
    assert later.packet_loss == 30 / 300 and later.inbound_bitrate_bps == 1_000_000.0
