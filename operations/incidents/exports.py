"""Downloads of an incident: the timeline as CSV, built only from entries the caller may see."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from operations.incidents.models import Incident, TimelineEntry

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets run cells that start like a formula; quote them (CSV injection).
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def timeline_csv(*, incident: Incident, entries: Iterable[TimelineEntry]) -> str:
    """The given entries of ``incident`` as CSV (the caller chose them with timeline_visible)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["incident", "time (UTC)", "kind", "visibility", "author", "entry"])
    for entry in entries:
        writer.writerow(
            [
                _cell(incident.reference),
                entry.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                _cell(entry.get_kind_display()),
                "internal" if entry.internal else "client-visible",
                _cell(entry.author_label),
                _cell(entry.body),
            ]
        )
    return buffer.getvalue()


def timeline_csv_filename(incident: Incident) -> str:
    return f"{incident.reference}-timeline.csv"
