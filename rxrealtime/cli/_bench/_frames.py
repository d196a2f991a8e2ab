"""The frames the suites feed, and the pydantic models a vendor-style SDK parses them with.

The mix is what a generating session receives: overwhelmingly ``generation_tick``, with
the occasional ICE candidate, ack, queue update and session id. Frames are ``str``, as
aiohttp hands text frames to the read loop, and are produced by our own encoder so every
contender parses exactly the same bytes.
"""

from __future__ import annotations

import random
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from ... import protocol as p

__all__ = ["MIX", "VendorFrame", "frame_mix", "tick_frames", "vendor_adapter"]

MIX: dict[str, int] = {
    "generation_tick": 90,
    "ice-candidate": 3,
    "prompt_ack": 2,
    "queue_position": 2,
    "session_id": 1,
    "generation_started": 1,
    "set_image_ack": 1,
}
"""Frames per hundred, by type."""

_CANDIDATE = "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host"


def _sample(kind: str, i: int) -> p.ServerMessage:
    if kind == "generation_tick":
        return p.GenerationTick(seconds=i)
    if kind == "ice-candidate":
        return p.IceCandidateMessage(
            candidate=p.IceCandidate(candidate=_CANDIDATE, sdpMLineIndex=0, sdpMid="0")
        )
    if kind == "prompt_ack":
        return p.PromptAck(prompt=f"a cyberpunk city at night, take {i}", success=True)
    if kind == "queue_position":
        return p.QueuePosition(position=i % 7, queue_size=7)
    if kind == "session_id":
        return p.SessionIdMessage(session_id=f"{i:032x}", server_ip="127.0.0.1", server_port=8765)
    if kind == "generation_started":
        return p.GenerationStarted()
    if kind == "set_image_ack":
        return p.SetImageAck(success=True)
    raise ValueError(kind)


def frame_mix(n: int = 1000, seed: int = 5) -> list[str]:
    """``n`` text frames in the proportions of :data:`MIX`, shuffled reproducibly."""
    kinds = [kind for kind, share in MIX.items() for _ in range(share)]
    rng = random.Random(seed)
    frames = [p.encode(_sample(kinds[i % len(kinds)], i)).decode() for i in range(n)]
    rng.shuffle(frames)
    return frames


def tick_frames(n: int = 1000) -> list[str]:
    """``n`` ``generation_tick`` text frames with growing (realistic) second counts."""
    return [p.encode(p.GenerationTick(seconds=i)).decode() for i in range(n)]


# -- the vendor SDK's way: json.loads, then a pydantic discriminated union ---------------


class _Candidate(BaseModel):
    candidate: str
    sdpMLineIndex: int | None = None
    sdpMid: str | None = None


class _Turn(BaseModel):
    username: str
    credential: str
    server_url: str


class VAnswer(BaseModel):
    type: Literal["answer"]
    sdp: str


class VIceCandidate(BaseModel):
    type: Literal["ice-candidate"]
    candidate: _Candidate


class VSessionId(BaseModel):
    type: Literal["session_id"]
    session_id: str
    server_ip: str
    server_port: int


class VReady(BaseModel):
    type: Literal["ready"]


class VPromptAck(BaseModel):
    type: Literal["prompt_ack"]
    prompt: str
    success: bool
    error: str | None = None


class VSetImageAck(BaseModel):
    type: Literal["set_image_ack"]
    success: bool
    error: str | None = None


class VGenerationStarted(BaseModel):
    type: Literal["generation_started"]


class VGenerationTick(BaseModel):
    type: Literal["generation_tick"]
    seconds: int


class VGenerationEnded(BaseModel):
    type: Literal["generation_ended"]
    seconds: int
    reason: str


class VQueuePosition(BaseModel):
    type: Literal["queue_position"]
    position: int
    queue_size: int


class VIceRestart(BaseModel):
    type: Literal["ice-restart"]
    turn_config: _Turn


class VError(BaseModel):
    type: Literal["error"]
    error: str


VendorFrame = Annotated[
    VAnswer
    | VIceCandidate
    | VSessionId
    | VReady
    | VPromptAck
    | VSetImageAck
    | VGenerationStarted
    | VGenerationTick
    | VGenerationEnded
    | VQueuePosition
    | VIceRestart
    | VError,
    Field(discriminator="type"),
]
"""The same protocol table as ``protocol.ServerMessage``, in pydantic."""


def vendor_adapter() -> TypeAdapter[Any]:
    """One adapter, built once like our decoder, so neither side pays schema building."""
    return TypeAdapter(VendorFrame)
