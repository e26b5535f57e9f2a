"""The columns of the findings list as CSV (streamed by ``msp.api.csv_download``)."""

from __future__ import annotations

from msp.api.csv_download import CsvColumn
from operations.compliance.checks import get_check
from operations.compliance.models import Finding, FindingStatus


def finding_effective_status(finding: Finding) -> str:
    """``waived`` for a failure an unexpired waiver covers (the list's ``waived`` annotation)."""
    if finding.status == FindingStatus.FAIL and getattr(finding, "waived", False):
        return "waived"
    return finding.status


def finding_controls(finding: Finding) -> str:
    check = get_check(finding.check_code)
    return " ".join(check.controls) if check else ""


#: One row per finding, in the list's order and filters (``?format=csv``).
FINDING_CSV_COLUMNS = (
    CsvColumn("id", "id"),
    CsvColumn("check", "check_code"),
    CsvColumn("controls", finding_controls),
    CsvColumn("severity", "severity"),
    CsvColumn("status", finding_effective_status),
    CsvColumn("subject type", "subject_type"),
    CsvColumn("subject id", "subject_id"),
    CsvColumn("subject", "subject_label"),
    CsvColumn("detail", "detail"),
    CsvColumn("first seen (UTC)", "first_seen"),
    CsvColumn("last seen (UTC)", "last_seen"),
    CsvColumn("failing since (UTC)", "failing_since"),
    CsvColumn("resolved (UTC)", "resolved_at"),
)


def findings_csv_filename(tenant) -> str:
    return f"{tenant.slug}-compliance-findings.csv"
