"""Inline SVG charts for the report page, drawn here: no library, no script, no network.

Every label goes through `html.escape`: store names and messages come from records, which are
data, never markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = (
    "#3b6ea5",
    "#e07b39",
    "#5aa469",
    "#c44e52",
    "#8172b2",
    "#937860",
    "#da8bc3",
    "#8c8c8c",
    "#ccb974",
    "#64b5cd",
)
FONT = 'font-family="sans-serif" font-size="11"'


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {FONT} {extra}>{escape(text)}</text>'
    )


def _empty(title: str, width: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="60" role="img" '
        f'aria-label="{escape(title)}">'
        + _text(10, 35, f"{title}: no records in this period", extra='fill="#666"')
        + "</svg>"
    )


def _number(value: float) -> str:
    """A tick label: no decimals when whole, at most two otherwise."""
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}".rstrip("0").rstrip(".")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 < value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= value:
            return step * factor
    return step * 10


def weekly_bars(
    weeks: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    title: str,
    width: int = 900,
    height: int = 260,
) -> str:
    """Stacked bars: one bar per week, one colour per series (category)."""
    totals = [sum(values[i] for _, values in series) for i in range(len(weeks))]
    if not weeks or not any(totals):
        return _empty(title, width)
    left, right, top, bottom = 60, 240, 20, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max(totals))
    slot = plot_w / len(weeks)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#333"/>',
    ]
    for tick in range(5):
        value = top_value * tick / 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        parts.append(_text(left - 6, y + 4, _number(value), "end"))
    for index, week in enumerate(weeks):
        base = float(top + plot_h)
        x = left + index * slot + slot * 0.15
        for number, (name, values) in enumerate(series):
            value = values[index]
            if not value:
                continue
            bar = plot_h * value / top_value
            base -= bar
            parts.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{slot * 0.7:.1f}" height="{bar:.1f}" '
                f'fill="{PALETTE[number % len(PALETTE)]}"><title>{escape(name)}, week of '
                f"{escape(week)}: {value:,}</title></rect>"
            )
        if index % 2 == 0:
            parts.append(_text(x + slot * 0.35, top + plot_h + 16, week[5:], "middle"))
    parts.append(_text(left, height - 8, "week starting (MM-DD)"))
    for number, (name, _) in enumerate(series):
        y = top + 14 * number
        parts.append(
            f'<rect x="{width - right + 10}" y="{y}" width="10" height="10" '
            f'fill="{PALETTE[number % len(PALETTE)]}"/>'
        )
        parts.append(_text(width - right + 26, y + 9, name[:34]))
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Bar:
    """One horizontal bar: a label, a value, and an optional limit drawn as a mark."""

    label: str
    value: float
    limit: float | None = None
    alarm: bool = False


def horizontal_bars(bars: Sequence[Bar], title: str, unit: str, width: int = 900) -> str:
    """One row per bar; a limit is a dark tick across the row."""
    if not bars:
        return _empty(title, width)
    left, right, row = 260, 60, 22
    height = 30 + row * len(bars) + 30
    plot_w = width - left - right
    top_value = _nice_max(max(max(b.value, b.limit or 0) for b in bars))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}">'
    ]
    for tick in range(5):
        x = left + plot_w * tick / 4
        parts.append(f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{height - 30}" stroke="#ddd"/>')
        parts.append(_text(x, height - 14, f"{_number(top_value * tick / 4)} {unit}", "middle"))
    for index, bar in enumerate(bars):
        y = 24 + row * index
        length = plot_w * bar.value / top_value
        colour = "#c44e52" if bar.alarm else "#3b6ea5"
        parts.append(_text(left - 8, y + 12, bar.label[:40], "end"))
        parts.append(
            f'<rect x="{left}" y="{y}" width="{max(length, 1):.1f}" height="{row - 8}" '
            f'fill="{colour}"><title>{escape(bar.label)}: {bar.value:,.1f} {unit}</title></rect>'
        )
        if bar.limit is not None:
            lx = left + plot_w * bar.limit / top_value
            parts.append(
                f'<line x1="{lx:.1f}" y1="{y - 3}" x2="{lx:.1f}" y2="{y + row - 5}" '
                'stroke="#111" stroke-width="3"/>'
            )
    parts.append("</svg>")
    return "".join(parts)
