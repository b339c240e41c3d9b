"""Server-rendered SVG charts: geometry only, computed here and drawn by a template.

The pages' Content Security Policy forbids inline script and ``style=""``, so a
chart is plain SVG elements with geometry attributes and CSS classes
(``console.css``). Each chart comes with the table it is drawn from, beside it
in the page, so the figures are readable without the picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def bars(rows: Sequence[tuple[str, float | None, str]], *, width: int = 640,
         row_height: int = 24, label_width: int = 200, scale: float | None = None
         ) -> dict[str, Any]:
    """A horizontal bar chart: one bar per ``(label, value, value text)``; ``scale`` is
    the value of a full bar (the largest value if None)."""
    top = max([v for _, v, _ in rows if v is not None] + [0.0])
    full = scale or top or 1.0
    room = width - label_width - 70
    out = []
    for n, (label, value, text) in enumerate(rows):
        y = n * row_height
        length = max(0.0, (value or 0) / full) * room
        out.append({"label": _short(label, 28), "full_label": label, "text": text,
                    "y": y + 4, "height": row_height - 8, "x": label_width,
                    "width": round(length, 1), "text_x": round(label_width + length + 6, 1),
                    "text_y": y + row_height - 8, "label_x": label_width - 6})
    return {"width": width, "height": max(len(rows), 1) * row_height, "bars": out}


def columns(rows: Sequence[tuple[str, float, float | None]], *, width: int = 720,
            height: int = 200, bottom: int = 20, ticks: int = 6) -> dict[str, Any]:
    """Vertical bars of ``count`` per ``(label, count, share)`` and a line of ``share``
    (0..1) over them; a few labels under the axis (at most ``ticks``)."""
    n = max(len(rows), 1)
    plot = height - bottom
    step = width / n
    top = max([c for _, c, _ in rows] + [1.0])
    out, points = [], []
    for i, (label, count, share) in enumerate(rows):
        h = count / top * (plot - 10)
        x = i * step
        out.append({"label": label, "x": round(x + step * 0.1, 2), "y": round(plot - h, 2),
                    "width": round(step * 0.8, 2), "height": round(h, 2)})
        if share is not None:
            points.append(f"{x + step / 2:.1f},{plot - share * (plot - 10):.1f}")
    every = max(1, -(-len(rows) // ticks))
    labels = [{"x": round(i * step + step / 2, 1), "text": label}
              for i, (label, _, _) in enumerate(rows) if i % every == 0]
    return {"width": width, "height": height, "plot": plot, "bars": out,
            "line": " ".join(points), "labels": labels, "top": top}


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
