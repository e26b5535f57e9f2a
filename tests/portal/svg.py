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
    """The (x, y) points of each series' line segment drawn, in SVG coordinates (y grows
    downwards); axes and guides left out."""
    lines = []
    for path in parse_svg(markup).iter(f"{SVG}path"):
        if {"line", "reactive"} <= set(path.get("class", "").split()):
            for segment in re.split(r"(?=M)", path.get("d", "")):
                numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", segment)]
                if numbers:
                    lines.append(list(zip(numbers[::2], numbers[1::2], strict=True)))
    return lines


def dots(markup: str) -> int:
    """How many data points are drawn as dots."""
    return sum(1 for c in parse_svg(markup).iter(f"{SVG}circle") if "dot" in c.get("class", ""))


def all_text(markup: str) -> str:
    """The drawing's written text (its <text> elements), joined: what a reader sees."""
    root = parse_svg(markup)
    return " ".join(" ".join(e.itertext()).strip() for e in root.iter(f"{SVG}text"))
