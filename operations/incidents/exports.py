"""Downloads of incidents as CSV: one incident's timeline, built only from entries the caller
may see, and the columns of a tenant's incident list (streamed by ``msp.api.csv_download``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from msp.api.csv_download import CsvColumn, csv_cell
from operations.incidents.models import Incident, TimelineEntry
from operations.incidents.services import user_display_name


def timeline_csv(*, incident: Incident, entries: Iterable[TimelineEntry]) -> str:
    """The given entries of ``incident`` as CSV (the caller chose them with timeline_visible)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["incident", "time (UTC)", "kind", "visibility", "author", "entry"])
    for entry in entries:
        writer.writerow(
            [
                csv_cell(incident.reference),
                entry.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                csv_cell(entry.get_kind_display()),
                "internal" if entry.internal else "client-visible",
                csv_cell(entry.author_label),
                csv_cell(entry.body),
            ]
        )
    return buffer.getvalue()


def timeline_csv_filename(incident: Incident) -> str:
    return f"{incident.reference}-timeline.csv"


def _assignee(incident: Incident) -> str:
    return user_display_name(incident.assignee) if incident.assignee_id else ""


#: The incident list as CSV, one row per incident (API ``?format=csv`` and the portal).
INCIDENT_CSV_COLUMNS = (
    CsvColumn("incident", "reference"),
    CsvColumn("title", "title"),
    CsvColumn("severity", "severity"),
    CsvColumn("status", "status"),
    CsvColumn("category", "category"),
    CsvColumn("source", "source"),
    CsvColumn("assignee", _assignee),
    CsvColumn("created (UTC)", "created_at"),
    CsvColumn("acknowledged (UTC)", "acknowledged_at"),
    CsvColumn("resolved (UTC)", "resolved_at"),
    CsvColumn("acknowledge due (UTC)", "ack_due_at"),
    CsvColumn("resolve due (UTC)", "resolve_due_at"),
    CsvColumn("SLA breached", lambda i: bool(i.ack_breached_at or i.resolve_breached_at)),
    CsvColumn("serious", "serious"),
    CsvColumn("regulator deadline (UTC)", "regulator_deadline"),
)


def incidents_csv_filename(tenant) -> str:
    return f"{tenant.slug}-incidents.csv"
