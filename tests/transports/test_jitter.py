"""The video jitter buffer gives up a lost packet after half a second of media behind it,
instead of aiortc's 512 packets (7-8 s of frozen video at 640x360@15 after loss ends).
Packets are fed by hand: RTP timestamps are the clock, nothing sleeps."""

from __future__ import annotations

from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from rxrealtime.transports.jitter import RecoveringJitterBuffer

FRAME_TICKS = 6000  # 15 fps at 90 kHz
PACKETS_PER_FRAME = 3


def packets(frames: range, lose: set[int] = frozenset()) -> list[RtpPacket]:
    """Frames of three packets each, sequence numbers from 0; ``lose`` drops some."""
    out = []
    for frame in frames:
        for part in range(PACKETS_PER_FRAME):
            seq = frame * PACKETS_PER_FRAME + part
            if seq in lose:
                continue
            packet = RtpPacket(sequence_number=seq % 65536, timestamp=frame * FRAME_TICKS,
                               marker=part == PACKETS_PER_FRAME - 1)  # fmt: skip
            packet._data = bytes([frame % 256, part])  # type: ignore[attr-defined]
            out.append(packet)
    return out


def feed(buffer: JitterBuffer, stream: list[RtpPacket]) -> tuple[list[int], int]:
    """Frames handed on (by their first byte) and PLIs asked for."""
    frames, plis = [], 0
    for packet in stream:
        pli, frame = buffer.add(packet)
        plis += pli
        if frame is not None:
            frames.append(frame.data[0])
    return frames, plis


def test_without_loss_it_behaves_as_aiortcs() -> None:
    ours = feed(RecoveringJitterBuffer(), packets(range(40)))
    theirs = feed(JitterBuffer(capacity=512, is_video=True), packets(range(40)))
    assert ours == theirs == (list(range(39)), 0)  # the last frame waits for the next


def test_a_hole_is_waited_on_while_a_retransmission_can_still_come() -> None:
    lost = packets(range(20), lose={31})  # frame 10's middle packet
    buffer = RecoveringJitterBuffer(max_wait_s=0.5)  # 7.5 frames of 15 fps
    frames, plis = feed(buffer, lost[:36])  # frames up to 11: 1.5 frames behind the hole
    assert frames == list(range(10)) and plis == 0
    late = packets(range(10, 11))[1]  # the retransmission arrives
    frames, plis = feed(buffer, [late, *lost[36:]])
    assert frames == list(range(10, 19)) and plis == 0 and buffer.holes_skipped == 0


def test_a_hole_that_never_fills_is_given_up_with_a_keyframe_request() -> None:
    stream = packets(range(60), lose={31})
    frames, plis = feed(RecoveringJitterBuffer(max_wait_s=0.5), stream)
    assert 10 not in frames  # the damaged frame is dropped, never handed on broken
    assert frames[:10] == list(range(10)) and frames[10] == 11
    assert frames[-1] == 58 and plis == 1  # and everything after it flows, one PLI asked
    # aiortc's own buffer is still waiting on the hole, 150 packets later
    theirs, _ = feed(JitterBuffer(capacity=512, is_video=True), stream)
    assert theirs == list(range(10))


def test_a_lost_first_packet_and_whole_lost_frames_are_skipped_too() -> None:
    stream = packets(range(60), lose={30, 33, 34, 35})  # frame 10's first, all of 11
    frames, plis = feed(RecoveringJitterBuffer(max_wait_s=0.5), stream)
    assert frames[:10] == list(range(10)) and frames[10] == 12 and frames[-1] == 58
    assert plis == 1


def test_timestamps_that_wrap_around_are_not_mistaken_for_a_long_wait() -> None:
    buffer = RecoveringJitterBuffer(max_wait_s=0.5)
    stream = packets(range(20), lose={31})
    for packet in stream:
        packet.timestamp = (packet.timestamp + 2**32 - 5 * FRAME_TICKS) % 2**32
    frames, plis = feed(buffer, stream[:36])
    assert frames == list(range(10)) and plis == 0


def test_keyframes_are_asked_for_at_most_once_a_second_of_media() -> None:
    # frames 10 and 20 damaged (0.67 s apart at 15 fps), then frame 60 (2.7 s later)
    stream = packets(range(100), lose={31, 61, 181})
    buffer = RecoveringJitterBuffer(max_wait_s=0.2)
    frames, plis = feed(buffer, stream)
    assert buffer.holes_skipped == 3 and plis == 2  # the second hole's request is held back
    assert {10, 20, 60}.isdisjoint(frames) and frames[-1] == 98
