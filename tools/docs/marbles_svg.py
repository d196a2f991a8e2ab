"""Draw a marble diagram (SVG) of a virtual-time run: input lanes, the operator, output.

No dependencies and no network: plain SVG text, deterministic (the same run gives the
same bytes). Times are ``TestScheduler`` ticks; the diagram starts at the subscription
(``start``, time 0) and the operators read one tick as one second.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

WIDTH = 760
LEFT = 96  # lane titles
RIGHT = 36
LANE = 54  # height of a lane with one row of marbles
ROW = 30  # each stacked row adds this
BOX = 46  # the operator box
AXIS = 34
R = 13  # marble radius
CHAR_W = 7.2  # width of one character of the 12 px marble text, roughly
SANS = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
MONO = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'Liberation Mono', monospace"
INPUT_COLOURS = ("#4f83cc", "#b07cc6", "#e0a030", "#5aa5a0")
OUTPUT_COLOUR = "#3f9f5f"
LINE = "#5a6270"


@dataclass(frozen=True)
class Lane:
    """One line of the diagram: a title and its notifications."""

    title: str
    records: Sequence[Any]  # reactivex.testing.recorded.Recorded
    colour: str


def _kind(record: Any) -> str:
    return str(record.value.kind)  # "N", "C" or "E"


def _width(text: str) -> float:
    return max(2 * R, len(text) * CHAR_W + 12)


def render(
    inputs: Sequence[tuple[str, Sequence[Any]]],
    expression: str,
    output: Sequence[Any],
    label: Callable[[Any], str],
    *,
    start: int = 200,
    title: str = "",
) -> str:
    """The SVG text of one diagram; ``label`` turns a value into its marble text."""
    lanes_in = [
        Lane(name, records, INPUT_COLOURS[i % len(INPUT_COLOURS)])
        for i, (name, records) in enumerate(inputs)
    ]
    lane_out = Lane("output", output, OUTPUT_COLOUR)
    times = [r.time for lane in [*lanes_in, lane_out] for r in lane.records]
    last = int(max([start + 10, *times])) + 10
    end = start + -(-(last - start) // 10) * 10  # whole tens of seconds
    span = WIDTH - LEFT - RIGHT

    def x(t: int) -> float:
        return LEFT + (t - start) / (end - start) * span

    parts: list[str] = []
    y = 8.0
    placed_in = []
    for lane in lanes_in:
        rows, items = _place(lane, x, label)
        placed_in.append((lane, y, rows, items))
        y += LANE + ROW * (rows - 1)
    box_y = y + 4
    y = box_y + BOX + 6
    rows_out, items_out = _place(lane_out, x, label)
    out_y = y
    y += LANE + ROW * (rows_out - 1)
    axis_y = y + 4
    height = axis_y + AXIS

    parts.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" role="img" aria-label="{escape(title, _ATTR)}" '
        f'font-family="{escape(SANS, _ATTR)}" font-size="12">'
    )
    parts.append(f"<title>{escape(title)}</title>")
    parts.append(f'<rect width="{WIDTH}" height="{height:.0f}" fill="#ffffff"/>')
    parts.append(
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{LINE}"/></marker>'
        "</defs>"
    )
    for lane, lane_y, rows, items in placed_in:
        parts.extend(_draw_lane(lane, lane_y, rows, items, x))
    parts.append(
        f'<rect x="{LEFT - 8}" y="{box_y:.1f}" width="{span + 16}" height="{BOX}" rx="6" '
        'fill="#f3f5f8" stroke="#9aa3b0"/>'
    )
    parts.append(
        f'<text x="{LEFT + span / 2:.1f}" y="{box_y + BOX / 2 + 4:.1f}" text-anchor="middle" '
        f'font-family="{escape(MONO, _ATTR)}" font-size="13" fill="#1f2430">'
        f"{escape(expression)}</text>"
    )
    parts.extend(_draw_lane(lane_out, out_y, rows_out, items_out, x))
    parts.extend(_draw_axis(axis_y, start, end, x))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


_ATTR = {'"': "&quot;"}


def _place(
    lane: Lane, x: Callable[[int], float], label: Callable[[Any], str]
) -> tuple[int, list[tuple[Any, int, str, float]]]:
    """Marbles of a lane with their row: one that would overlap another goes up a row."""
    ends: list[float] = []  # right edge of the last marble of each row
    items = []
    for record in lane.records:
        kind = _kind(record)
        text = label(record.value.value) if kind == "N" else ""
        width = _width(text) if kind == "N" else 14.0
        left = x(record.time) - width / 2
        row = next((i for i, e in enumerate(ends) if left > e + 3), len(ends))
        if row == len(ends):
            ends.append(0.0)
        ends[row] = left + width
        items.append((record, row, text, width))
    return max(1, len(ends)), items


def _draw_lane(
    lane: Lane, top: float, rows: int, items: list[tuple[Any, int, str, float]],
    x: Callable[[int], float],
) -> list[str]:  # fmt: skip
    base = top + LANE / 2 + ROW * (rows - 1)
    out = [
        f'<text x="{LEFT - 18}" y="{base + 4:.1f}" text-anchor="end" fill="#1f2430" '
        f'font-weight="600">{escape(lane.title)}</text>',
        f'<line x1="{LEFT - 8}" y1="{base:.1f}" x2="{WIDTH - 12}" y2="{base:.1f}" '
        f'stroke="{LINE}" stroke-width="1.5" marker-end="url(#arrow)"/>',
    ]
    for record, row, text, width in items:
        cx, cy = x(record.time), base - row * ROW
        kind = _kind(record)
        if kind == "C":
            out.append(
                f'<line x1="{cx:.1f}" y1="{base - 12:.1f}" x2="{cx:.1f}" y2="{base + 12:.1f}" '
                f'stroke="#1f2430" stroke-width="2.5"><title>completed at '
                f"{_seconds(record.time)}</title></line>"
            )
        elif kind == "E":
            out.append(
                f'<path d="M{cx - 7:.1f},{base - 7:.1f} L{cx + 7:.1f},{base + 7:.1f} '
                f'M{cx - 7:.1f},{base + 7:.1f} L{cx + 7:.1f},{base - 7:.1f}" '
                'stroke="#c0392b" stroke-width="2.5"><title>error</title></path>'
            )
        else:
            tip = escape(f"{record.value.value!r} at {_seconds(record.time)}")
            out.append(
                f'<g><title>{tip}</title><rect x="{cx - width / 2:.1f}" y="{cy - R:.1f}" '
                f'width="{width:.1f}" height="{2 * R}" rx="{R}" fill="{lane.colour}" '
                'stroke="#1f2430" stroke-width="1"/>'
                f'<text x="{cx:.1f}" y="{cy + 4:.1f}" text-anchor="middle" fill="#ffffff" '
                f'font-weight="600">{escape(text)}</text></g>'
            )
    return out


def _seconds(t: int, start: int = 200) -> str:
    return f"t={t - start:g} s"


def _draw_axis(top: float, start: int, end: int, x: Callable[[int], float]) -> list[str]:
    out = [f'<line x1="{LEFT}" y1="{top:.1f}" x2="{x(end):.1f}" y2="{top:.1f}" stroke="#9aa3b0"/>']
    step = 10 if end - start <= 120 else 20
    for t in range(start, end + 1, step):
        out.append(
            f'<line x1="{x(t):.1f}" y1="{top:.1f}" x2="{x(t):.1f}" y2="{top + 5:.1f}" '
            'stroke="#9aa3b0"/>'
        )
        out.append(
            f'<text x="{x(t):.1f}" y="{top + 18:.1f}" text-anchor="middle" fill="#5a6270" '
            f'font-size="11">{t - start} s</text>'
        )
    out.append(
        f'<text x="{LEFT - 18}" y="{top + 18:.1f}" text-anchor="end" fill="#5a6270" '
        'font-size="11">subscribe</text>'
    )
    return out
