"""Small SVG charts for the HTML report and dashboard (inline, so the pages stay self-contained).

Values may be ``None`` (not measured): bars are left out and lines break there.

Every text a chart embeds (titles, axis labels, series names, categories: checkpoint labels and sentence ids come
from user files) goes through :func:`markupsafe.escape` here, and only numbers and this module's own constants are
written unescaped; that is why the charts are returned as :class:`~markupsafe.Markup`, which the Jinja2 templates
insert as is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from markupsafe import Markup, escape

__all__ = ["PALETTE", "bar_chart", "line_chart"]

PALETTE = ("#1f6fb4", "#e0812b", "#3a9d4a", "#c23b3b", "#7b5fb3", "#8c6a4e")
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 34, 72


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    return [round(start + i * step, 10) for i in range(int(math.ceil((high - start) / step)) + 1)]


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _frame(
    title: str,
    y_label: str,
    width: int,
    height: int,
    ticks: list[float],
    y_of: Callable[[float], float],
    kind: str,
    series: Sequence[str],
) -> list[str]:
    parts = [
        f'<svg class="plot" data-kind="{escape(kind)}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="{width / 2:.0f}" y="18" text-anchor="middle" class="plot-title" font-size="14" '
        f'font-weight="600">{escape(title)}</text>',
        f'<text transform="translate(14 {(_TOP + y_of(ticks[0])) / 2:.0f}) rotate(-90)" text-anchor="middle" '
        f'font-size="11">{escape(y_label)}</text>',
    ]
    for tick in ticks:
        y = y_of(tick)
        parts.append(
            f'<line x1="{_LEFT}" x2="{width - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd" stroke-width="1"/>'
        )
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{_fmt(tick)}</text>')
    for i, (name, (x, row)) in enumerate(zip(series, _legend_slots(series, width), strict=True)):
        y = height - 14 - 16 * (_legend_rows(series, width) - 1 - row)
        parts.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>')
        parts.append(f'<text x="{x + 14}" y="{y + 9}" font-size="11">{escape(name)}</text>')
    return parts


def _legend_slots(series: Sequence[str], width: int) -> list[tuple[int, int]]:
    """(x, row) of each legend entry, wrapping onto a new row when the next one would not fit."""
    slots, x, row = [], _LEFT, 0
    for name in series:
        span = 24 + 7 * len(name)
        if x + span > width - _RIGHT and x > _LEFT:
            x, row = _LEFT, row + 1
        slots.append((x, row))
        x += span
    return slots


def _legend_rows(series: Sequence[str], width: int) -> int:
    return 1 + max((row for _, row in _legend_slots(series, width)), default=0)


def _scale(
    series: Mapping[str, Sequence[float | None]], height: int, floor_zero: bool, bottom: int = _BOTTOM
) -> tuple[list[float], Callable[[float], float]]:
    values = [v for vs in series.values() for v in vs if v is not None and math.isfinite(v)]
    low = min(values, default=0.0)
    high = max(values, default=1.0)
    if floor_zero:
        low = min(low, 0.0)
    ticks = _ticks(low, high if high > low else low + 1.0)
    lo, hi = ticks[0], ticks[-1]
    plot_h = height - _TOP - bottom

    def y_of(v: float) -> float:
        return _TOP + plot_h * (1 - (v - lo) / (hi - lo))

    return ticks, y_of


def bar_chart(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    y_label: str = "",
    width: int | None = None,
    height: int = 260,
) -> Markup:
    """Grouped bars: one group per category, one bar per series (e.g. candidate and base per sentence)."""
    width = width or max(360, _LEFT + _RIGHT + len(categories) * (10 + 12 * max(1, len(series))))
    extra = 16 * (_legend_rows(list(series), width) - 1)
    height += extra
    axis_y = height - _BOTTOM - extra
    ticks, y_of = _scale(series, height, floor_zero=True, bottom=_BOTTOM + extra)
    parts = _frame(title, y_label, width, height, ticks, y_of, "bar", list(series))
    group_w = (width - _LEFT - _RIGHT) / max(1, len(categories))
    bar_w = max(2.0, (group_w - 6) / max(1, len(series)))
    zero = y_of(max(0.0, ticks[0]))
    for c, category in enumerate(categories):
        x0 = _LEFT + c * group_w + 3
        for s, (name, values) in enumerate(series.items()):
            value = values[c] if c < len(values) else None
            if value is None or not math.isfinite(value):
                continue
            y = y_of(value)
            top, bar_h = min(y, zero), abs(zero - y)
            parts.append(
                f'<rect class="bar" x="{x0 + s * bar_w:.1f}" y="{top:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{max(bar_h, 0.5):.1f}" fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{escape(category)} {escape(name)}: {_fmt(value)}</title></rect>"
            )
        label_x = x0 + group_w / 2 - 3
        parts.append(
            f'<text x="{label_x:.1f}" y="{axis_y + 14}" font-size="10" text-anchor="end" '
            f'transform="rotate(-35 {label_x:.1f} {axis_y + 14})">{escape(category[:18])}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # safe: every text above went through escape()


def line_chart(
    x_labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    y_label: str = "",
    width: int = 560,
    height: int = 260,
) -> Markup:
    """Lines over an ordered axis (e.g. a metric per run over time), with a dot per point."""
    extra = 16 * (_legend_rows(list(series), width) - 1)
    height += extra
    axis_y = height - _BOTTOM - extra
    ticks, y_of = _scale(series, height, floor_zero=False, bottom=_BOTTOM + extra)
    parts = _frame(title, y_label, width, height, ticks, y_of, "line", list(series))
    n = len(x_labels)
    step = (width - _LEFT - _RIGHT) / max(1, n - 1) if n > 1 else 0.0

    def x_of(i: int) -> float:
        return _LEFT + (i * step if n > 1 else (width - _LEFT - _RIGHT) / 2)

    every = max(1, n // 8)
    for i, label in enumerate(x_labels):
        if i % every == 0 or i == n - 1:
            x = x_of(i)
            parts.append(
                f'<text x="{x:.1f}" y="{axis_y + 14}" font-size="10" text-anchor="end" '
                f'transform="rotate(-35 {x:.1f} {axis_y + 14})">{escape(label[:16])}</text>'
            )
    for s, (name, values) in enumerate(series.items()):
        colour = PALETTE[s % len(PALETTE)]
        run: list[str] = []
        segments: list[list[str]] = [run]
        for i, value in enumerate(values):
            if value is None or not math.isfinite(value):
                run = []
                segments.append(run)
                continue
            run.append(f"{x_of(i):.1f},{y_of(value):.1f}")
            parts.append(
                f'<circle class="point" cx="{x_of(i):.1f}" cy="{y_of(value):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(x_labels[i] if i < n else '')} {escape(name)}: {_fmt(value)}</title></circle>"
            )
        for seg in segments:
            if len(seg) > 1:
                parts.append(
                    f'<polyline class="line" fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(seg)}"/>'
                )
    parts.append("</svg>")
    return Markup("".join(parts))  # safe: every text above went through escape()
