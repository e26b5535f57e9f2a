"""The columns of the audit log as CSV (streamed by ``msp.api.csv_download``)."""

from __future__ import annotations

import json

from msp.api.csv_download import CsvColumn
from tenants.models import AuditEvent


def audit_changes_text(event: AuditEvent) -> str:
    return json.dumps(event.changes, sort_keys=True, default=str) if event.changes else ""


#: One row per audit event, in the list's order and filters (``?format=csv``, MSP staff).
AUDIT_CSV_COLUMNS = (
    CsvColumn("id", "id"),
    CsvColumn("occurred (UTC)", "occurred_at"),
    CsvColumn("tenant", "tenant.slug"),
    CsvColumn("actor", "actor_label"),
    CsvColumn("source", "source"),
    CsvColumn("action", "action"),
    CsvColumn("object type", "object_type"),
    CsvColumn("object id", "object_id"),
    CsvColumn("object", "object_repr"),
    CsvColumn("changes", audit_changes_text),
    CsvColumn("request id", "request_id"),
    CsvColumn("source address", "source_address"),
)

#: Only MSP staff download the audit log; clients read their tenant's in the portal.
AUDIT_CSV_STAFF_ONLY = "Only MSP staff can download the audit log as CSV."
