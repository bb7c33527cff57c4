"""The console's charts, as SVG written here: no chart library, no CDN, no script.

Each chart scales with the page (viewBox), names itself for screen readers (role="img",
<title>, <desc>), shows its numbers as text next to the shapes, and uses the Okabe-Ito
colours, which stay distinct for colour-blind readers. Every chart sits next to a table
or a CSV export with the same figures.
"""

from __future__ import annotations

import datetime as dt
from typing import Dict, List, Optional, Sequence, Tuple
from xml.sax.saxutils import escape

from markupsafe import Markup

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999", "#F0E442")
OUTCOME_COLOURS = {"answer": "#009E73", "clarify": "#E69F00", "out_of_scope": "#999999", "handoff": "#CC79A7",
                   "urgent": "#D55E00", "empty": "#56B4E9", "callback": "#6A3D9A", "other": "#0072B2"}
TEXT = "#1f2933"
GRID = "#d9dee3"
FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\""


def _nice_max(value: float) -> float:
    """A round axis maximum at or above value (1, 2, 5 × 10^n)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _svg(chart_id: str, title: str, description: str, width: int, height: int, body: List[str]) -> Markup:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
            f'aria-labelledby="{chart_id}-title {chart_id}-desc" class="chart" {FONT}>'
            f'<title id="{chart_id}-title">{escape(title)}</title>'
            f'<desc id="{chart_id}-desc">{escape(description)}</desc>')
    return Markup(head + "".join(body) + "</svg>")


def horizontal_bars(chart_id: str, title: str, rows: Sequence[Tuple[str, int]], colour: str = PALETTE[0],
                    colours: Optional[Sequence[str]] = None, width: int = 640) -> Markup:
    """One bar per row, largest first as given; the label on the left, the count at the bar's end."""
    bar, gap, label_width, top = 22, 8, 210, 6
    height = top * 2 + max(1, len(rows)) * (bar + gap)
    most = max((value for _, value in rows), default=0)
    scale = (width - label_width - 70) / (most or 1)
    body: List[str] = []
    if not rows:
        body.append(f'<text x="{width / 2}" y="{height / 2 + 5}" text-anchor="middle" fill="{TEXT}" '
                    'font-size="14">No messages in these dates</text>')
    for index, (label, value) in enumerate(rows):
        y = top + index * (bar + gap)
        fill = colours[index % len(colours)] if colours else colour
        short = label if len(label) <= 30 else label[:29] + "…"
        length = max(value * scale, 1 if value else 0)
        body.append(f'<g><title>{escape(label)}: {value:,}</title>'
                    f'<text x="{label_width - 8}" y="{y + bar * 0.7:.1f}" text-anchor="end" fill="{TEXT}" '
                    f'font-size="13">{escape(short)}</text>'
                    f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar}" rx="3" fill="{fill}"/>'
                    f'<text x="{label_width + length + 6:.1f}" y="{y + bar * 0.7:.1f}" fill="{TEXT}" '
                    f'font-size="13">{value:,}</text></g>')
    total = sum(value for _, value in rows)
    description = f"{len(rows)} bars, {total:,} in all; " + "; ".join(f"{label} {value:,}"
                                                                      for label, value in rows[:12])
    return _svg(chart_id, title, description, width, height, body)


def stacked_columns(chart_id: str, title: str, days: Sequence[dt.date], series: Dict[str, List[int]],
                    labels: Dict[str, str], width: int = 720, height: int = 260) -> Markup:
    """A column per day, stacked by series (channel), with a legend and a day axis."""
    left, right, top, bottom, legend = 48, 12, 12, 42, 26
    plot_w, plot_h = width - left - right, height - top - bottom - legend
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    axis_max = _nice_max(max(totals, default=0))
    column = plot_w / max(1, len(days))
    bar_w = max(2.0, min(40.0, column * 0.7))
    body: List[str] = []
    for step in range(5):
        value = axis_max * step / 4
        y = top + plot_h - plot_h * step / 4
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
                    f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="{TEXT}">'
                    f'{value:,.0f}</text>')
    label_every = max(1, int(len(days) / 10 + 0.999))
    for index, day in enumerate(days):
        x = left + index * column + (column - bar_w) / 2
        y = top + plot_h
        parts = []
        for position, (name, values) in enumerate(series.items()):
            value = values[index]
            if not value:
                continue
            h = plot_h * value / axis_max
            y -= h
            parts.append(f"{labels.get(name, name)} {value:,}")
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                        f'fill="{PALETTE[position % len(PALETTE)]}"><title>{day:%a %d %b}: '
                        f'{escape(labels.get(name, name))} {value:,}</title></rect>')
        if index % label_every == 0:
            body.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="11" '
                        f'fill="{TEXT}">{day:%d %b}</text>')
        if totals[index] and len(days) <= 14:
            body.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" font-size="11" '
                        f'fill="{TEXT}">{totals[index]:,}</text>')
    x = left
    for position, name in enumerate(series):
        label = labels.get(name, name)
        colour = PALETTE[position % len(PALETTE)]
        body.append(f'<rect x="{x}" y="{height - 18}" width="12" height="12" fill="{colour}"/>'
                    f'<text x="{x + 16}" y="{height - 8}" font-size="12" fill="{TEXT}">{escape(label)}</text>')
        x += 26 + 8 * len(label)
    description = "No messages in these dates"
    if any(totals):
        busiest = max(range(len(days)), key=lambda i: totals[i])
        description = (f"{sum(totals):,} in all over {len(days)} days; busiest day {days[busiest]:%d %b} "
                       f"with {totals[busiest]:,}")
    return _svg(chart_id, title, description, width, height, body)
