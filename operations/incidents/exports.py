"""Downloads of incidents as CSV: one incident's timeline, built only from entries the caller
may see, and a tenant's incident list."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from operations.incidents.models import Incident, TimelineEntry
from operations.incidents.services import user_display_name

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

#: The most incidents one list export carries; past it the caller narrows the filters.
INCIDENT_EXPORT_LIMIT = 10_000


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


def _time(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def incidents_csv(*, incidents: Iterable[Incident]) -> str:
    """The given incidents as CSV, one row each (the caller filtered and ordered them)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "incident",
            "title",
            "severity",
            "status",
            "category",
            "source",
            "assignee",
            "created (UTC)",
            "acknowledged (UTC)",
            "resolved (UTC)",
            "acknowledge due (UTC)",
            "resolve due (UTC)",
            "SLA breached",
            "serious",
            "regulator deadline (UTC)",
        ]
    )
    for incident in incidents:
        breached = incident.ack_breached_at or incident.resolve_breached_at
        writer.writerow(
            [
                _cell(incident.reference),
                _cell(incident.title),
                incident.severity,
                incident.status,
                incident.category,
                incident.source,
                _cell(user_display_name(incident.assignee) if incident.assignee_id else ""),
                _time(incident.created_at),
                _time(incident.acknowledged_at),
                _time(incident.resolved_at),
                _time(incident.ack_due_at),
                _time(incident.resolve_due_at),
                "yes" if breached else "no",
                "yes" if incident.serious else "no",
                _time(incident.regulator_deadline),
            ]
        )
    return buffer.getvalue()


def incidents_csv_filename(tenant) -> str:
    return f"{tenant.slug}-incidents.csv"
