"""A framework's score history drawn as an inline SVG sparkline (0–100 % onto a small box).

Drawn on the server: no JavaScript charting library, and the figures are also given as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

WIDTH = 120
HEIGHT = 28


@dataclass(frozen=True)
class Trend:
    points: str  # SVG polyline points; empty when fewer than two scores could be drawn
    values: tuple[Decimal, ...]  # the scores drawn, oldest first
    change: Decimal | None  # latest minus the oldest drawn; None with fewer than two

    @property
    def direction(self) -> str:
        if self.change is None or self.change == 0:
            return "steady"
        return "up" if self.change > 0 else "down"

    @property
    def magnitude(self) -> Decimal | None:
        return None if self.change is None else abs(self.change)


def score_trend(scores) -> Trend:
    """``scores`` oldest first; those without a score (no control assessed) are skipped."""
    values = tuple(score.score for score in scores if score.score is not None)
    if len(values) < 2:
        return Trend(points="", values=values, change=None)
    step = WIDTH / (len(values) - 1)
    points = " ".join(
        f"{index * step:.1f},{HEIGHT - float(min(max(value, 0), 100)) / 100 * HEIGHT:.1f}"
        for index, value in enumerate(values)
    )
    return Trend(points=points, values=values, change=values[-1] - values[0])
