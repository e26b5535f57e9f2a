"""The portal's one chart: a small inline SVG sparkline of a 0–100 % value.

Drawn on the server, so a page needs no JavaScript charting library and reads without scripts;
templates draw it with ``portal/_sparkline.html`` and give the figures as text beside it.
"""

from __future__ import annotations

from collections.abc import Iterable

WIDTH = 120
HEIGHT = 28


def sparkline_points(points: Iterable[tuple[float, float]]) -> str:
    """SVG polyline points for ``(x, value)`` pairs: x from 0 to 1 across the box, the value a
    percentage (clamped to 0–100) up it."""
    return " ".join(
        f"{x * WIDTH:.1f},{HEIGHT - min(max(float(value), 0.0), 100.0) / 100 * HEIGHT:.1f}"
        for x, value in points
    )


def sparkline_context() -> dict:
    """What ``portal/_sparkline.html`` reads from a page's context: the box's size."""
    return {"sparkline_width": WIDTH, "sparkline_height": HEIGHT}
