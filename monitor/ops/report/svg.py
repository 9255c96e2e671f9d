"""The report's charts as inline SVG, drawn by pure functions.

Three kinds, enough for a daily report: a line/area chart over time
(:func:`line_chart`), horizontal bars (:func:`bar_chart`) and horizontal
100 % stacked bars for a sentiment mix (:func:`stacked_bars`). Each returns
one ``<svg>`` element as text: well-formed XML (a unit test parses it), every
label escaped, a ``<title>`` for screen readers, sized by its ``viewBox`` so
it scales with the page and prints sharp. No JavaScript, no external fonts
or images: the HTML page stays self-contained.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

#: Font stack of every label: Chinese needs a CJK font (Debian's
#: ``fonts-noto-cjk`` provides Noto Sans CJK SC).
FONT_FAMILY = (
    "'Noto Sans CJK SC', 'Noto Sans SC', 'Source Han Sans SC', "
    "'PingFang SC', 'Microsoft YaHei', sans-serif, 'Noto Color Emoji'"
)
#: Colours of the three sentiment labels (positive, neutral, negative).
SENTIMENT_COLOURS = ("#3b9a6b", "#b4bcc6", "#d64541")
#: Colours of further series, in order.
PALETTE = (
    "#d64541",
    "#2f6fb5",
    "#e08a1e",
    "#7b4fa0",
    "#2a9d8f",
    "#8c6d46",
    "#c2518f",
    "#5b7083",
)
TEXT_COLOUR = "#333"
GRID_COLOUR = "#e3e6ea"
FONT_SIZE = 12
#: Longest label drawn, in characters (longer ones end with ``…``).
MAX_LABEL_CHARS = 14


@dataclass(frozen=True)
class Series:
    """One line of a :func:`line_chart`.

    Attributes:
        name: Legend text.
        values: One value per x position (>= 0).
        colour: CSS colour.
        area: Fill the area under the line.

    """

    name: str
    values: tuple[float, ...]
    colour: str
    area: bool = False


@dataclass(frozen=True)
class Marker:
    """A labelled vertical line on a :func:`line_chart` (a burst, say).

    Attributes:
        index: The x position it marks (0-based, may be fractional).
        label: Short text drawn beside it.

    """

    index: float
    label: str


def _text(value: object) -> str:
    """Escape text for an XML text node or attribute."""
    return escape(str(value), quote=True)


def _number(value: float) -> str:
    """Format a coordinate with at most one decimal (small, stable output)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def label(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    """Return ``text`` cut to ``limit`` characters (``…`` ends a cut one)."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """Estimated drawn width of ``text``: wide (CJK) characters count double."""
    wide = sum(1 for char in text if ord(char) >= 0x1100)
    return (wide * 1.0 + (len(text) - wide) * 0.6) * size


def nice_ticks(maximum: float, count: int = 4) -> tuple[float, ...]:
    """Axis ticks from 0 covering ``maximum`` with round steps (1, 2, 5 x 10^n).

    Steps are at least 1: the charts count posts.

    Args:
        maximum: Largest value to show (<= 1 gives ``(0, 1)``).
        count: Roughly how many steps.

    Returns:
        Increasing ticks, the first 0 and the last >= ``maximum``.

    """
    if not maximum > 1 or not math.isfinite(maximum):
        return (0.0, 1.0)
    raw = max(maximum / max(count, 1), 1.0)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    steps = math.ceil(maximum / step - 1e-9)
    return tuple(float(step * i) for i in range(steps + 1))


def _tick_text(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def _open(width: float, height: float, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_number(width)} '
        f'{_number(height)}" width="{_number(width)}" height="{_number(height)}" '
        f'role="img" aria-label="{_text(title)}" font-family="{_text(FONT_FAMILY)}" '
        f'font-size="{FONT_SIZE}" class="chart">',
        f"<title>{_text(title)}</title>",
    ]


def _legend(items: Sequence[tuple[str, str]], x: float, y: float) -> list[str]:
    parts = []
    for name, colour in items:
        parts.append(
            f'<rect x="{_number(x)}" y="{_number(y - 9)}" width="10" height="10" '
            f'fill="{_text(colour)}" rx="2"/>'
        )
        parts.append(
            f'<text x="{_number(x + 14)}" y="{_number(y)}" fill="{TEXT_COLOUR}">'
            f"{_text(label(name))}</text>"
        )
        x += 14 + text_width(label(name)) + 16
    return parts


def line_chart(
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    markers: Sequence[Marker] = (),
    width: float = 760,
    height: float = 260,
    max_x_labels: int = 8,
) -> str:
    """Draw a line (or area) chart of values over evenly spaced x positions.

    Args:
        x_labels: One label per x position; empty ones are not drawn, and
            of the others at most ``max_x_labels``, evenly picked.
        series: Lines to draw; each has ``len(x_labels)`` values.
        title: Accessible title (``<title>``, ``aria-label``).
        markers: Vertical lines to draw, e.g. at bursts.
        width: Width in CSS pixels.
        height: Height in CSS pixels.
        max_x_labels: Most x labels drawn.

    Raises:
        ValueError: If a series' length differs from ``x_labels``'.

    """
    points = len(x_labels)
    for one in series:
        if len(one.values) != points:
            raise ValueError(
                f"series {one.name!r} has {len(one.values)} values for {points} labels"
            )
    top = max((v for one in series for v in one.values), default=0.0)
    ticks = nice_ticks(top)
    left = 12 + max(text_width(_tick_text(t)) for t in ticks)
    right, upper, lower = 16.0, 34.0, 28.0
    plot_w, plot_h = width - left - right, height - upper - lower
    scale = ticks[-1] or 1.0

    def x_at(index: float) -> float:
        return left + (plot_w * index / (points - 1) if points > 1 else plot_w / 2)

    def y_at(value: float) -> float:
        return upper + plot_h * (1 - max(value, 0.0) / scale)

    parts = _open(width, height, title)
    parts += _legend([(one.name, one.colour) for one in series], left, 16)
    for tick in ticks:
        y = y_at(tick)
        parts.append(
            f'<line x1="{_number(left)}" y1="{_number(y)}" '
            f'x2="{_number(width - right)}" y2="{_number(y)}" stroke="{GRID_COLOUR}"/>'
        )
        parts.append(
            f'<text x="{_number(left - 6)}" y="{_number(y + 4)}" text-anchor="end" '
            f'fill="{TEXT_COLOUR}">{_text(_tick_text(tick))}</text>'
        )
    shown = [index for index, name in enumerate(x_labels) if name]
    every = max(1, math.ceil(len(shown) / max(max_x_labels, 1)))
    for index in shown[::every]:
        parts.append(
            f'<text x="{_number(x_at(index))}" y="{_number(height - 8)}" '
            f'text-anchor="middle" fill="{TEXT_COLOUR}">'
            f"{_text(label(x_labels[index]))}</text>"
        )
    # A label that would run into the previous one goes one row lower.
    row, previous_end = 0, -math.inf
    for marker in sorted(markers, key=lambda m: m.index):
        x = x_at(marker.index)
        name = label(marker.label)
        row = (row + 1) % 3 if x + 3 < previous_end else 0
        previous_end = x + 3 + text_width(name, 10)
        parts.append(
            f'<line class="marker" x1="{_number(x)}" y1="{_number(upper)}" '
            f'x2="{_number(x)}" y2="{_number(upper + plot_h)}" stroke="#888" '
            f'stroke-dasharray="4 3"/>'
        )
        parts.append(
            f'<text x="{_number(x + 3)}" y="{_number(upper + 11 + 12 * row)}" '
            f'fill="#555" font-size="10">{_text(name)}</text>'
        )
    for one in series:
        coords = [(x_at(i), y_at(v)) for i, v in enumerate(one.values)]
        if not coords:
            continue
        path = " ".join(f"{_number(x)},{_number(y)}" for x, y in coords)
        if one.area:
            base = _number(upper + plot_h)
            parts.append(
                f'<polygon class="area" points="{_number(coords[0][0])},{base} {path} '
                f'{_number(coords[-1][0])},{base}" fill="{_text(one.colour)}" '
                f'fill-opacity="0.18" stroke="none"/>'
            )
        parts.append(
            f'<polyline class="series" data-name="{_text(one.name)}" points="{path}" '
            f'fill="none" stroke="{_text(one.colour)}" stroke-width="2" '
            f'stroke-linejoin="round"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    rows: Sequence[tuple[str, float]],
    *,
    title: str,
    colour: str = PALETTE[1],
    highlight: frozenset[str] = frozenset(),
    highlight_colour: str = PALETTE[2],
    width: float = 760,
    bar_height: float = 14,
) -> str:
    """Horizontal bars, one per row, longest scaled to the plot width.

    Args:
        rows: ``(label, value)`` pairs, drawn top to bottom (values >= 0).
        title: Accessible title.
        colour: Bar colour.
        highlight: Labels whose bars take ``highlight_colour``.
        highlight_colour: Colour of highlighted bars.
        width: Width in CSS pixels.
        bar_height: Height of one bar.

    """
    gap = 6
    left = 12 + max((text_width(label(name)) for name, _ in rows), default=0)
    value_room = 12 + max((text_width(f"{v:g}") for _, v in rows), default=0)
    plot_w = max(width - left - value_room, 10)
    height = 10 + len(rows) * (bar_height + gap)
    top = max((v for _, v in rows), default=0.0) or 1.0
    parts = _open(width, height, title)
    for index, (name, value) in enumerate(rows):
        y = 6 + index * (bar_height + gap)
        length = plot_w * max(value, 0.0) / top
        fill = highlight_colour if name in highlight else colour
        parts.append(
            f'<text x="{_number(left - 8)}" y="{_number(y + bar_height - 2)}" '
            f'text-anchor="end" fill="{TEXT_COLOUR}">{_text(label(name))}</text>'
        )
        parts.append(
            f'<rect class="bar" data-label="{_text(name)}" data-value="{value:g}" '
            f'x="{_number(left)}" y="{_number(y)}" width="{_number(length)}" '
            f'height="{_number(bar_height)}" fill="{_text(fill)}" rx="2"/>'
        )
        parts.append(
            f'<text x="{_number(left + length + 6)}" y="{_number(y + bar_height - 2)}" '
            f'fill="{TEXT_COLOUR}">{_text(f"{value:g}")}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def stacked_bars(
    rows: Sequence[tuple[str, Sequence[int]]],
    segments: Sequence[str],
    *,
    title: str,
    colours: Sequence[str] = SENTIMENT_COLOURS,
    width: float = 760,
    bar_height: float = 18,
) -> str:
    """Horizontal 100 % stacked bars: each row's parts as shares, with its total.

    Args:
        rows: ``(label, counts)``; each ``counts`` has one count per segment.
        segments: Legend names of the segments (e.g. 正面, 中性, 负面).
        title: Accessible title.
        colours: One colour per segment.
        width: Width in CSS pixels.
        bar_height: Height of one bar.

    Raises:
        ValueError: If a row's counts do not match ``segments``.

    """
    for name, counts in rows:
        if len(counts) != len(segments):
            raise ValueError(
                f"row {name!r} has {len(counts)} counts, not {len(segments)}"
            )
    gap, upper = 8, 26
    left = 12 + max((text_width(label(name)) for name, _ in rows), default=0)
    total_room = 12 + max((text_width(f"{sum(c):,}") for _, c in rows), default=0)
    plot_w = max(width - left - total_room, 10)
    height = upper + len(rows) * (bar_height + gap) + 4
    parts = _open(width, height, title)
    parts += _legend(list(zip(segments, colours, strict=False)), left, 14)
    for index, (name, counts) in enumerate(rows):
        y = upper + index * (bar_height + gap)
        total = sum(counts)
        parts.append(
            f'<text x="{_number(left - 8)}" y="{_number(y + bar_height - 5)}" '
            f'text-anchor="end" fill="{TEXT_COLOUR}">{_text(label(name))}</text>'
        )
        x = left
        for segment, count, colour in zip(segments, counts, colours, strict=False):
            share = count / total if total else 0.0
            length = plot_w * share
            parts.append(
                f'<rect class="segment" data-label="{_text(name)}" '
                f'data-segment="{_text(segment)}" data-value="{count}" '
                f'x="{_number(x)}" y="{_number(y)}" width="{_number(length)}" '
                f'height="{_number(bar_height)}" fill="{_text(colour)}"/>'
            )
            if length >= 34:
                parts.append(
                    f'<text x="{_number(x + length / 2)}" '
                    f'y="{_number(y + bar_height - 5)}" text-anchor="middle" '
                    f'fill="#fff" font-size="11">{round(share * 100)}%</text>'
                )
            x += length
        parts.append(
            f'<text x="{_number(left + plot_w + 6)}" y="{_number(y + bar_height - 5)}" '
            f'fill="{TEXT_COLOUR}">{total:,}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
