"""Reads of reports: a tenant's list (published ones only for client users; evidence packs only
for those who read the audit log) and a stored file, checked against its SHA-256 before it is
served."""

from __future__ import annotations

import hashlib

from django.db.models import QuerySet

from operations.jobs.models import FINISHED_STATUSES
from operations.jobs.selectors import job_runs_recent
from operations.reports.models import Report, ReportFormat, ReportKind, ReportStatus
from tenants.selectors import TenantAccess


class ReportFileUnavailable(Exception):
    """The format was not made (``reason`` says why) or the stored file fails its checksum."""

    def __init__(self, reason: str, *, corrupt: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.corrupt = corrupt


#: The figures a list needs; the (large) figures stay out of lists.
LIST_FIELDS = ("figures",)


def reports_visible(queryset: QuerySet[Report], *, access: TenantAccess) -> QuerySet[Report]:
    """Drafts (quarterly reviews being written) are for MSP staff only; evidence packs carry
    the audit trail, so they are for those who may read the audit log."""
    queryset = queryset.defer(*LIST_FIELDS)
    if not access.is_staff:
        queryset = queryset.filter(status=ReportStatus.PUBLISHED)
    if not access.can_read_audit:
        queryset = queryset.exclude(kind=ReportKind.EVIDENCE_PACK)
    return queryset


def report_list(*, tenant, access: TenantAccess) -> QuerySet[Report]:
    return reports_visible(Report.objects.filter(tenant=tenant), access=access).order_by(
        "-period_start", "kind", "-version"
    )


def report_get(*, tenant, pk: int, access: TenantAccess) -> Report | None:
    return (
        reports_visible(Report.objects.filter(tenant=tenant), access=access)
        .defer(None)
        .filter(pk=pk)
        .first()
    )


def report_formats(report: Report) -> list[str]:
    """The formats ``report`` was stored in: an evidence pack's zip, else HTML and the PDF."""
    if report.kind == ReportKind.EVIDENCE_PACK:
        return [ReportFormat.ZIP]
    return [ReportFormat.HTML] + ([ReportFormat.PDF] if report.pdf_sha256 else [])


def report_file_name(report: Report, fmt: str) -> str:
    kind = f"{report.kind}-{report.framework}" if report.framework else report.kind
    stem = f"{report.tenant.slug}-{kind}-{report.period_label}-v{report.version}"
    return f"{stem}.{fmt}"


def report_file_read(*, report: Report, fmt: str) -> bytes:
    """The stored document of ``report`` in ``fmt``, verified against its checksum."""
    from operations.reports.services import report_storage

    if fmt == ReportFormat.PDF:
        name, digest = report.pdf_file.name, report.pdf_sha256
        if not name:
            raise ReportFileUnavailable(report.pdf_missing_reason or "No PDF was made.")
    elif fmt == ReportFormat.ZIP:
        name, digest = report.zip_file.name, report.zip_sha256
        if not name:
            raise ReportFileUnavailable("This report has no zip; download it as PDF or HTML.")
    else:
        name, digest = report.html_file.name, report.html_sha256
        if not name:
            raise ReportFileUnavailable("An evidence pack is a zip; download it as zip.")
    try:
        with report_storage().open(name, "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, OSError):
        raise ReportFileUnavailable("The stored file is missing.", corrupt=True) from None
    if hashlib.sha256(data).hexdigest() != digest:
        raise ReportFileUnavailable(
            "The stored file does not match its checksum; it is not served.", corrupt=True
        )
    return data


def evidence_pack_runs_in_progress(*, tenant, access: TenantAccess, recent: int = 50) -> list:
    """The tenant's evidence-pack job runs still queued or running (among its ``recent`` runs),
    for those who may see the packs: the portal shows them until the pack arrives."""
    from operations.reports.services import EVIDENCE_PACK_JOB_KIND

    if not access.can_read_audit:
        return []
    return [
        run
        for run in job_runs_recent(tenant=tenant, limit=recent)
        if run.kind == EVIDENCE_PACK_JOB_KIND and run.status not in FINISHED_STATUSES
    ]
