"""Reading back what a chart of ``tenants.portal.charts`` drew, for tests."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # noqa: N817

SVG = "{http://www.w3.org/2000/svg}"


def parse_svg(markup: str) -> ET.Element:
    """The chart's root element; raises if the markup is not well-formed XML."""
    root = ET.fromstring(str(markup))  # noqa: S314 - our own rendering
    assert root.tag == f"{SVG}svg"
    return root


def drawn_lines(markup: str) -> list[list[tuple[float, float]]]:
    """The (x, y) points of each line segment drawn, in SVG coordinates (y grows downwards)."""
    lines = []
    for path in parse_svg(markup).iter(f"{SVG}path"):
        if "line" in path.get("class", "").split() and "guide" not in path.get("class", ""):
            numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path.get("d", ""))]
            lines.append(list(zip(numbers[::2], numbers[1::2], strict=True)))
    return lines


def all_text(markup: str) -> str:
    """Every text node of the SVG, joined: what a reader of the drawing sees written."""
    return " ".join(t.strip() for t in parse_svg(markup).itertext() if t.strip())
