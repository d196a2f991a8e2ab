"""A frame key painted into the picture, so glass-to-glass latency can be measured on any
transport: the synthetic source paints each frame's key, the server's transform keeps it
readable, and the client reads it off the generated frame.

The code is a strip of square blocks along the bottom-left of the luma plane: one white
and one black reference block, then :data:`BITS` blocks (a 12-bit key and a 4-bit
check). Each block is large (1/32 of the width) so a lossy codec keeps it; a bit is
read as "nearer the white reference than the black one", so any transform that keeps
brightness in order (the reference server blends every pixel halfway to the prompt's
tint) keeps the code. The check makes a picture that merely looks striped (a model's
own output) give no key rather than a wrong one; a key that passes the check is still
only a sample if the sender's :class:`~rxrealtime.latency.StampBook` issued it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["BITS", "KEY_BITS", "block_side", "paint_key", "read_key"]

KEY_BITS = 12
CHECK_BITS = 4
BITS = KEY_BITS + CHECK_BITS
WHITE, BLACK = 235, 16  # BT.601 limited range
MIN_BLOCK = 8
"""Below this a codec blurs a block into its neighbours: smaller pictures get no code."""
MIN_CONTRAST = 48
"""The references must differ by this much luma for a read to be trusted."""


def block_side(width: int, height: int) -> int:
    """The side of one block for a ``width`` x ``height`` picture (0: no code fits)."""
    side = (width // 32) & ~1  # even, so chroma rows and columns align
    if side < MIN_BLOCK or (BITS + 2) * side > width or side * 4 > height:
        return 0
    return side


def _check(key: int) -> int:
    """4 bits that depend on every bit of the key (a small CRC, polynomial x^4 + x + 1)."""
    crc = 0
    for bit in range(KEY_BITS - 1, -1, -1):
        crc = ((crc << 1) | ((key >> bit) & 1)) & 0x1F
        if crc & 0x10:
            crc ^= 0x13
    for _ in range(CHECK_BITS):
        crc <<= 1
        if crc & 0x10:
            crc ^= 0x13
    return crc & 0xF


def _bits(key: int) -> list[int]:
    word = (key << CHECK_BITS) | _check(key)
    return [(word >> (BITS - 1 - i)) & 1 for i in range(BITS)]


def paint_key(planes: Sequence[np.ndarray], key: int) -> bool:
    """Paint ``key`` (its low :data:`KEY_BITS`) into yuv420p ``planes`` (Y, U, V); False
    when the picture is too small to carry a code. Chroma under the strip is neutral."""
    luma = planes[0]
    height, width = luma.shape
    side = block_side(width, height)
    if not side:
        return False
    top = height - side
    values = [WHITE, BLACK, *(WHITE if b else BLACK for b in _bits(key % (1 << KEY_BITS)))]
    for index, value in enumerate(values):
        luma[top:, index * side : (index + 1) * side] = value
    for chroma in planes[1:3]:
        chroma[top // 2 :, : len(values) * side // 2] = 128
    return True


def read_key(luma: np.ndarray) -> int | None:
    """The key painted into a luma plane, or ``None`` (no code, or a damaged one)."""
    height, width = luma.shape
    side = block_side(width, height)
    if not side:
        return None
    # the middle half of each block: its edges bleed into the neighbours after coding
    top, inner = height - side + side // 4, side // 2
    row = luma[top : top + inner]
    means = [float(row[:, i * side + side // 4 : i * side + side // 4 + inner].mean())
             for i in range(BITS + 2)]  # fmt: skip
    white, black = means[0], means[1]
    if white - black < MIN_CONTRAST:
        return None
    middle = (white + black) / 2
    word = 0
    for mean in means[2:]:
        word = (word << 1) | (mean > middle)
    key, check = word >> CHECK_BITS, word & ((1 << CHECK_BITS) - 1)
    return key if _check(key) == check else None
