"""LiveKit's WebRTC stats as a session's :class:`~rxrealtime.quality.MediaCounters`.

Pure: the LiveKit transport reads two lists of stats records (LiveKit's proto
``RtcStats``, each a oneof: ``inbound_rtp``, ``outbound_rtp``, ``candidate_pair``,
``transport``, ...) and :func:`media_counters` decides what they mean:

- packets received and lost, jitter and bytes in come from the *video inbound RTP of the
  generated track(s)* only, read off those tracks' own stats (``track.get_stats()``): a
  room may carry other participants' video, and the session's stats are those of the
  generated video. Retransmissions are no stream of their own in libwebrtc's stats (RTX
  is a field, ``rtx_ssrc``, of the media stream's record), so nothing is to be skipped;
  a stream listed twice (same SSRC) counts once.
- bytes out are the video outbound RTP of the room (what this participant published).
- the round-trip time is the current one of the selected candidate pair (the one the
  ``transport`` record names, else the nominated succeeded one), of the generated
  track's path first; ``None`` until a STUN response measured it.

Counters are cumulative, as :class:`~rxrealtime.quality.StatsSampler` wants them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..quality import MediaCounters

__all__ = ["media_counters"]

PAIR_SUCCEEDED = 4
"""``IceCandidatePairState.PAIR_SUCCEEDED`` in LiveKit's stats proto."""
CANDIDATE_TYPES = {0: "host", 1: "srflx", 2: "prflx", 3: "relay"}
"""``IceCandidateType`` values in LiveKit's stats proto, as :class:`MediaCounters` names them."""


def media_counters(
    room: Iterable[Any], generated: Iterable[Any], *, frames_sent: int | None = None
) -> MediaCounters:
    """The counters of one sample: ``room`` is the room's records (publisher and subscriber
    lists), ``generated`` those of the generated track(s); ``frames_sent`` counts the frames
    the transport handed to its video source (``None``: take the encoder's count)."""
    room, generated = list(room), list(generated)
    packets_in = lost = bytes_in = 0
    jitter: float | None = None
    seen: set[int] = set()
    inbound = False
    for record in _of(generated, "inbound_rtp"):
        if record.stream.kind != "video" or record.stream.ssrc in seen:
            continue
        seen.add(record.stream.ssrc)
        inbound = True
        packets_in += record.received.packets_received
        lost += max(0, record.received.packets_lost)  # may go negative on duplicates
        bytes_in += record.inbound.bytes_received
        jitter = record.received.jitter if jitter is None else max(jitter, record.received.jitter)
    bytes_out = encoded = 0
    outbound = False
    for record in _unique(_of(room, "outbound_rtp")):
        if record.stream.kind == "video":
            outbound = True
            bytes_out += record.sent.bytes_sent
            encoded += record.outbound.frames_sent
    pair, local_type = _selected_pair(generated) or _selected_pair(room) or (None, None)
    rtt = None
    if pair is not None and pair.responses_received > 0:
        rtt = pair.current_round_trip_time
    return MediaCounters(
        frames_sent=frames_sent if frames_sent is not None else encoded,
        bytes_received=bytes_in if inbound else None,
        bytes_sent=bytes_out if outbound else None,
        packets_received=packets_in if inbound else None,
        packets_lost=lost if inbound else None,
        jitter_s=jitter,
        rtt_s=rtt,
        candidate_pair=local_type,
    )


def _of(records: Sequence[Any], kind: str) -> list[Any]:
    """The ``kind`` member of every record whose oneof is ``kind``."""
    return [getattr(r, kind) for r in records if r.WhichOneof("stats") == kind]


def _unique(members: list[Any]) -> list[Any]:
    """One of each record id (a record may be in both lists)."""
    seen: set[str] = set()
    out = []
    for member in members:
        if member.rtc.id not in seen:
            seen.add(member.rtc.id)
            out.append(member)
    return out


def _selected_pair(records: Sequence[Any]) -> tuple[Any, str | None] | None:
    """The selected candidate pair among ``records`` and its local candidate's type."""
    pairs = {p.rtc.id: p.candidate_pair for p in _of(records, "candidate_pair")}
    selected = [t.transport.selected_candidate_pair_id for t in _of(records, "transport")]
    pair = next((pairs[i] for i in selected if i in pairs), None)
    if pair is None:
        pair = next((p for p in pairs.values() if p.nominated and p.state == PAIR_SUCCEEDED),
                    None)  # fmt: skip
    if pair is None:
        return None
    locals_ = {c.rtc.id: c.candidate for c in _of(records, "local_candidate")}
    local = locals_.get(pair.local_candidate_id)
    return pair, (CANDIDATE_TYPES.get(local.candidate_type) if local is not None else None)
