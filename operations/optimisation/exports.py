"""The columns of the recommendations list as CSV (streamed by ``msp.api.csv_download``)."""

from __future__ import annotations

from msp.api.csv_download import CsvColumn

#: One row per recommendation, in the list's order and filters (``?format=csv``).
RECOMMENDATION_CSV_COLUMNS = (
    CsvColumn("id", "id"),
    CsvColumn("kind", "kind"),
    CsvColumn("title", "title"),
    CsvColumn("subject type", "subject_type"),
    CsvColumn("subject", "subject_label"),
    CsvColumn("status", "status"),
    CsvColumn("estimated monthly saving", "estimated_monthly_saving"),
    CsvColumn("currency", "currency"),
    CsvColumn("first seen (UTC)", "first_seen"),
    CsvColumn("last seen (UTC)", "last_seen"),
    CsvColumn("accepted (UTC)", "accepted_at"),
    CsvColumn("accepted by", "accepted_by_label"),
    CsvColumn("implemented (UTC)", "implemented_at"),
    CsvColumn("implemented by", "implemented_by_label"),
    CsvColumn("dismissed (UTC)", "dismissed_at"),
    CsvColumn("dismissed by", "dismissed_by_label"),
    CsvColumn("dismissed reason", "dismissed_reason"),
)


def recommendations_csv_filename(tenant) -> str:
    return f"{tenant.slug}-recommendations.csv"
