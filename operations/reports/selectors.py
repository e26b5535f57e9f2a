"""Reads of reports: a tenant's list (published ones only for client users) and a stored file,
checked against its SHA-256 before it is served."""

from __future__ import annotations

import hashlib

from django.db.models import QuerySet

from operations.reports.models import Report, ReportFormat, ReportStatus


class ReportFileUnavailable(Exception):
    """The format was not made (``reason`` says why) or the stored file fails its checksum."""

    def __init__(self, reason: str, *, corrupt: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.corrupt = corrupt


#: The figures a list needs; the (large) figures stay out of lists.
LIST_FIELDS = ("figures",)


def reports_visible(queryset: QuerySet[Report], *, staff: bool) -> QuerySet[Report]:
    """Drafts (quarterly reviews being written) are for MSP staff only."""
    queryset = queryset.defer(*LIST_FIELDS)
    return queryset if staff else queryset.filter(status=ReportStatus.PUBLISHED)


def report_list(*, tenant, staff: bool) -> QuerySet[Report]:
    return reports_visible(Report.objects.filter(tenant=tenant), staff=staff).order_by(
        "-period_start", "kind", "-version"
    )


def report_get(*, tenant, pk: int, staff: bool) -> Report | None:
    return (
        reports_visible(Report.objects.filter(tenant=tenant), staff=staff)
        .defer(None)
        .filter(pk=pk)
        .first()
    )


def report_file_name(report: Report, fmt: str) -> str:
    stem = f"{report.tenant.slug}-{report.kind}-{report.period_label}-v{report.version}"
    return f"{stem}.{fmt}"


def report_file_read(*, report: Report, fmt: str) -> bytes:
    """The stored document of ``report`` in ``fmt``, verified against its checksum."""
    from operations.reports.services import report_storage

    if fmt == ReportFormat.PDF:
        name, digest = report.pdf_file.name, report.pdf_sha256
        if not name:
            raise ReportFileUnavailable(report.pdf_missing_reason or "No PDF was made.")
    else:
        name, digest = report.html_file.name, report.html_sha256
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
