"""SLA durations as people read and type them: ``90`` minutes is "1 h 30 min" and back.

Django's ``parse_duration`` wants "01:30:00" or ISO 8601 ("PT1H30M"); staff type "1h 30m",
"4 h" or "2d", so the plan's minutes are read and written here.
"""

from __future__ import annotations

import re

_UNIT_MINUTES = {"d": 60 * 24, "h": 60, "m": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(days?|d|hours?|hrs?|h|minutes?|mins?|m)?", re.I)


def duration_label(minutes: int) -> str:
    """Minutes in the largest whole units a person reads at a glance: 90 -> '1 h 30 min'."""
    days, rest = divmod(minutes, 60 * 24)
    hours, mins = divmod(rest, 60)
    parts = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{mins} min" if mins else "",
    ]
    return " ".join(part for part in parts if part) or "0 min"


def parse_duration_minutes(text: str) -> int:
    """'1 d 4 h', '4h', '90 min', '1.5h' or a bare '90' (minutes) as whole minutes.

    Raises ``ValueError`` with a sentence a person can act on.
    """
    cleaned = (text or "").strip().lower().replace(",", " ")
    if not cleaned:
        raise ValueError("Enter a duration, e.g. 15 min, 4 h or 1 d 4 h.")
    total = 0.0
    position = 0
    for match in _PART.finditer(cleaned):
        if cleaned[position : match.start()].strip():
            break
        number, unit = match.groups()
        total += float(number) * _UNIT_MINUTES[(unit or "m")[0]]
        position = match.end()
    if cleaned[position:].strip() or position == 0:
        raise ValueError(f"'{text}' is not a duration: use d, h and min, e.g. 1 d 4 h or 90 min.")
    if total != int(total):
        raise ValueError("A duration must be a whole number of minutes.")
    return int(total)
