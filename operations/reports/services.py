"""Writes of reports: build a report's files, record it as a new version, publish, edit a draft,
ask the job engine for one, and the monthly schedule's fan-out; the same for a compliance
evidence pack (the zip ``operations.compliance.evidence`` builds, stored and published at once).

A report is built (figures read, HTML drawn, PDF printed, files stored with their SHA-256)
outside any transaction, then recorded in one: the row and, when published, the
``report.ready`` event. A published row never changes again (the database refuses it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from operations.compliance.evidence import (
    build_evidence_pack,
    evidence_framework,
    evidence_period_check,
)
from operations.events.conf import events_settings
from operations.events.services import event_record
from operations.jobs.models import JobRun, JobTrigger
from operations.jobs.services import job_submit
from operations.reports.figures import report_figures, tenant_zone
from operations.reports.models import Report, ReportFormat, ReportKind, ReportStatus
from operations.reports.pdf import PdfUnavailable, html_to_pdf
from operations.reports.periods import (
    Period,
    month_period,
    period_check_complete,
    period_last_complete,
    period_parse,
)
from operations.reports.rendering import render_html
from tenants.audit import audit_record
from tenants.models import AuditAction, Tenant, TenantStatus
from tenants.scoping import tenant_scope

logger = logging.getLogger(__name__)

STORAGE_ALIAS = "reports"
JOB_KINDS = {ReportKind.MONTHLY: "monthly_service_report", ReportKind.QUARTERLY: "quarterly_review"}
EVIDENCE_PACK_JOB_KIND = "compliance_evidence_pack"
#: Local days of the month on which the schedule still submits last month's report: the 1st,
#: and a few more so a beat that was down on the 1st catches up.
SCHEDULE_CATCH_UP_DAYS = 7


class ReportImmutable(ValidationError):
    """A published report cannot change; generate a new version instead."""


def report_storage():
    return storages[STORAGE_ALIAS]


@dataclass
class StoredFile:
    name: str
    sha256: str
    size: int


@dataclass
class BuiltReport:
    """A report's documents, stored but not yet recorded."""

    tenant: Tenant
    kind: str
    period: Period
    figures: dict
    html: StoredFile
    pdf: StoredFile | None
    pdf_pages: int
    pdf_missing_reason: str
    generated_at: dt.datetime


def _store(tenant: Tenant, period: Period, kind: str, extension: str, data: bytes) -> StoredFile:
    digest = hashlib.sha256(data).hexdigest()
    # The checksum in the name: a file, once written, is never written over.
    name = f"{tenant.id}/{kind}/{period.label}-{digest[:20]}.{extension}"
    storage = report_storage()
    if storage.exists(name):
        with storage.open(name, "rb") as handle:
            if hashlib.sha256(handle.read()).hexdigest() == digest:
                return StoredFile(name=name, sha256=digest, size=len(data))
        # A damaged copy: the name promises these bytes, so they are put back.
        logger.warning("Stored report file %s failed its checksum; writing it again.", name)
        storage.delete(name)
    name = storage.save(name, ContentFile(data))
    return StoredFile(name=name, sha256=digest, size=len(data))


def _pdf_pages(pdf: bytes) -> int:
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)


class _Draft:
    """What the document template reads of a report before its row exists."""

    def __init__(
        self, *, kind: str, title: str, version: int, status: str, summary="", proposals=""
    ):
        self.kind = kind
        self.title = title
        self.version = version
        self.status = status
        self.summary = ""
        self.proposals = ""

    @property
    def is_published(self) -> bool:
        return self.status == ReportStatus.PUBLISHED

    def get_kind_display(self) -> str:
        return ReportKind(self.kind).label


def _title(tenant: Tenant, kind: str, period: Period) -> str:
    return f"{ReportKind(kind).label}: {tenant.name}, {period.title}"[:200]


def _next_version(tenant: Tenant, kind: str, period: Period, framework: str = "") -> int:
    """Versions count per document: kind, framework (evidence packs) and period."""
    top = Report.objects.filter(
        tenant=tenant,
        kind=kind,
        framework=framework,
        period_start=period.start,
        period_end=period.end,
    ).aggregate(top=Max("version"))["top"]
    return (top or 0) + 1


def _documents(
    tenant: Tenant, kind: str, period: Period, figures: dict, document, progress
) -> tuple[StoredFile, StoredFile | None, int, str]:
    progress(40, "Drawing the HTML document")
    html = render_html(report=document, figures=figures)
    stored_html = _store(tenant, period, kind, "html", html.encode())
    progress(60, "Printing the PDF")
    try:
        pdf = html_to_pdf(html)
    except PdfUnavailable as exc:
        return stored_html, None, 0, str(exc)[:300]
    stored_pdf = _store(tenant, period, kind, "pdf", pdf)
    return stored_html, stored_pdf, _pdf_pages(pdf), ""


def _no_progress(percent: float, message: str) -> None:
    return None


def report_build(
    *,
    tenant: Tenant,
    kind: str,
    period: Period,
    now: dt.datetime | None = None,
    progress: Callable[[float, str], None] = _no_progress,
) -> BuiltReport:
    """Read the figures (in the tenant's scope), draw and print the documents and store them.

    Records nothing: ``report_record`` does, in one transaction."""
    now = now or timezone.now()
    progress(10, "Reading the figures")
    with tenant_scope(tenant.id), transaction.atomic():
        figures = report_figures(tenant=tenant, period=period, now=now)
        version = _next_version(tenant, kind, period)
    status = ReportStatus.PUBLISHED if kind == ReportKind.MONTHLY else ReportStatus.DRAFT
    document = _Draft(kind=kind, title=_title(tenant, kind, period), version=version, status=status)
    html, pdf, pages, missing = _documents(tenant, kind, period, figures, document, progress)
    progress(90, "Recording the report")
    return BuiltReport(tenant, kind, period, figures, html, pdf, pages, missing, now)


def _event_payload(report: Report) -> dict:
    """The payload the catalogue's ``report.ready`` schema describes."""
    site, slug = events_settings().site_url, report.tenant.slug
    download = f"{site}/api/v1/tenants/{slug}/reports/{report.pk}/download"
    if report.kind == ReportKind.EVIDENCE_PACK:
        download += f"?format={ReportFormat.ZIP}"
    return {
        "id": report.pk,
        "tenant": slug,
        "kind": report.kind,
        "period_start": report.period_start.isoformat(),
        "period_end": report.period_end.isoformat(),
        "period": report.period_label,
        "version": report.version,
        "download_url": download,
        "url": f"{site}/portal/{slug}/reports/",
    }


def report_record(
    *, built: BuiltReport, job_run_id: int | None = None, requested_by_label: str = ""
) -> Report:
    """Insert ``built`` as the period's next version; a monthly report is published at once
    (with its ``report.ready`` event), a quarterly review stays a draft."""
    tenant = built.tenant
    publish = built.kind == ReportKind.MONTHLY

    def build_row() -> Report:
        report = Report(
            tenant=tenant,
            kind=built.kind,
            period_start=built.period.start,
            period_end=built.period.end,
            period_label=built.period.label,
            version=_next_version(tenant, built.kind, built.period),
            status=ReportStatus.PUBLISHED if publish else ReportStatus.DRAFT,
            title=_title(tenant, built.kind, built.period),
            time_zone=built.figures["period"]["timezone"],
            figures=built.figures,
            job_run_id=job_run_id,
            requested_by_label=requested_by_label[:200],
            generated_at=built.generated_at,
            published_at=built.generated_at if publish else None,
            published_by_label="automatic" if publish else "",
            pdf_missing_reason=built.pdf_missing_reason,
            pdf_pages=built.pdf_pages,
        )
        _attach(report, built)
        return report

    return _recorded(tenant, build_row)


def _attach(report: Report, built: BuiltReport) -> None:
    report.html_file.name = built.html.name
    report.html_sha256 = built.html.sha256
    report.html_size = built.html.size
    if built.pdf is not None:
        report.pdf_file.name = built.pdf.name
        report.pdf_sha256 = built.pdf.sha256
        report.pdf_size = built.pdf.size
    else:
        report.pdf_file.name = ""
        report.pdf_sha256 = ""
        report.pdf_size = 0


def _recorded(tenant: Tenant, build_row: Callable[[], Report]) -> Report:
    """Insert the row ``build_row`` makes (numbering its version inside the transaction),
    audited; a published one with its ``report.ready`` event. Retries a version taken by a
    concurrent run."""
    for attempt in range(3):
        try:
            with tenant_scope(tenant.id), transaction.atomic():
                report = build_row()
                report.save(force_insert=True)
                audit_record(
                    tenant=tenant,
                    action=AuditAction.CREATE,
                    instance=report,
                    changes={"version": [None, report.version], "status": [None, report.status]},
                )
                if report.is_published:
                    event_record(
                        tenant=tenant, topic="report.ready", payload=_event_payload(report)
                    )
                return report
        except IntegrityError:
            # Another run recorded the same version first: take the next one.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def report_generate(
    *,
    tenant: Tenant,
    kind: str,
    period: Period,
    now: dt.datetime | None = None,
    job_run_id: int | None = None,
    requested_by_label: str = "",
) -> Report:
    """``report_build`` then ``report_record``: a new version of ``tenant``'s report."""
    built = report_build(tenant=tenant, kind=kind, period=period, now=now)
    return report_record(built=built, job_run_id=job_run_id, requested_by_label=requested_by_label)


def _refuse_if_published(report: Report) -> None:
    if report.is_published:
        raise ReportImmutable(
            {"status": ["This report is published and cannot change; generate a new version."]}
        )


def report_draft_update(
    *, report: Report, summary: str | None = None, proposals: str | None = None
) -> Report:
    """Edit a quarterly review's summary and proposals while it is a draft; its documents are
    drawn again from the same figures."""
    _refuse_if_published(report)
    changes = {}
    for field, value in (("summary", summary), ("proposals", proposals)):
        if value is not None and value != getattr(report, field):
            changes[field] = [getattr(report, field), value]
            setattr(report, field, value)
    if not changes:
        return report
    _redraw(report)
    with tenant_scope(report.tenant_id), transaction.atomic():
        report.save()
        audit_record(
            tenant=report.tenant, action=AuditAction.UPDATE, instance=report, changes=changes
        )
    return report


def _redraw(report: Report) -> None:
    period = period_parse(report.kind, report.period_label)
    html, pdf, pages, missing = _documents(
        report.tenant, report.kind, period, report.figures, report, _no_progress
    )
    built = BuiltReport(
        report.tenant,
        report.kind,
        period,
        report.figures,
        html,
        pdf,
        pages,
        missing,
        report.generated_at,
    )
    _attach(report, built)
    report.pdf_pages = pages
    report.pdf_missing_reason = missing


def report_publish(*, report: Report, by_label: str) -> Report:
    """Publish a draft (a quarterly review): its documents are drawn without the draft mark,
    the row becomes immutable, and ``report.ready`` is recorded."""
    _refuse_if_published(report)
    report.status = ReportStatus.PUBLISHED
    report.published_at = timezone.now()
    report.published_by_label = by_label[:200]
    _redraw(report)
    with tenant_scope(report.tenant_id), transaction.atomic():
        report.save()
        audit_record(
            tenant=report.tenant,
            action=AuditAction.UPDATE,
            instance=report,
            changes={"status": [ReportStatus.DRAFT, ReportStatus.PUBLISHED]},
        )
        event_record(tenant=report.tenant, topic="report.ready", payload=_event_payload(report))
    return report


def report_request(
    *, tenant: Tenant, kind: str, period_label: str, user=None, token=None, now=None
) -> JobRun:
    """Ask the job engine for ``tenant``'s report of a past period (a new version if one
    exists already). Returns the queued run."""
    if kind not in JOB_KINDS:
        raise ValidationError({"kind": [f"Choose one of: {', '.join(JOB_KINDS)}."]})
    period = period_parse(kind, period_label)
    today = (now or timezone.now()).astimezone(tenant_zone(tenant)).date()
    period_check_complete(period, today=today)
    return job_submit(
        tenant=tenant,
        kind=JOB_KINDS[kind],
        parameters={"period": period.label},
        trigger=JobTrigger.USER,
        user=user,
        token=token,
    )


def period_for_run(*, tenant: Tenant, kind: str, label: str, now=None) -> Period:
    """The period a run reports on: the one named, else the last complete one."""
    if label:
        return period_parse(kind, label)
    today = (now or timezone.now()).astimezone(tenant_zone(tenant)).date()
    return period_last_complete(kind, today=today)


def reports_schedule_monthly(*, now: dt.datetime | None = None) -> list[int]:
    """Beat's hourly tick in one go: every active tenant whose local date is early in a month
    gets last month's report, once. Returns the ids of the runs submitted or found. (The beat
    task spreads the tenants over chunk tasks, each calling ``report_monthly_schedule_tenant``.)
    """
    now = now or timezone.now()
    runs = []
    for tenant in reports_monthly_tenants().select_related("plan"):
        run_id = report_monthly_schedule_tenant(tenant=tenant, now=now)
        if run_id is not None:
            runs.append(run_id)
    return runs


def reports_monthly_tenants():
    """The tenants that get monthly reports: the active ones, by id."""
    return Tenant.objects.filter(status=TenantStatus.ACTIVE).order_by("pk")


def report_monthly_schedule_tenant(*, tenant: Tenant, now: dt.datetime | None = None) -> int | None:
    """Submit last month's report of ``tenant`` if its local date is early in a month and the
    report does not exist yet (the run's dedupe key names the month, so a repeat finds the same
    run). Returns the run's id, or None when nothing is due."""
    now = now or timezone.now()
    if tenant.status != TenantStatus.ACTIVE:
        return None
    today = now.astimezone(tenant_zone(tenant)).date()
    if today.day > SCHEDULE_CATCH_UP_DAYS:
        return None
    period = month_period(today).previous()
    with tenant_scope(tenant.id):
        exists = Report.objects.filter(kind=ReportKind.MONTHLY, period_start=period.start).exists()
    if exists:
        return None
    run = job_submit(
        tenant=tenant,
        kind=JOB_KINDS[ReportKind.MONTHLY],
        parameters={"period": period.label},
        trigger=JobTrigger.SCHEDULE,
        dedupe_key=f"reports:monthly:{tenant.id}:{period.label}",
        label="schedule monthly:reports",
    )
    return run.pk


# --- compliance evidence packs -------------------------------------------------------------


@dataclass
class BuiltEvidencePack:
    """An evidence pack's zip, stored but not yet recorded."""

    tenant: Tenant
    framework_code: str
    period: Period
    figures: dict
    zip: StoredFile
    generated_at: dt.datetime


def evidence_pack_period(*, period_start: dt.date, period_end: dt.date) -> Period:
    """The pack's days, ``period_start`` to ``period_end`` inclusive, as a report period
    (whose end is the first day after); refused as ``evidence_period_check`` refuses."""
    evidence_period_check(period_start=period_start, period_end=period_end)
    label = f"{period_start.isoformat()}..{period_end.isoformat()}"
    return Period(ReportKind.EVIDENCE_PACK, period_start, period_end + dt.timedelta(days=1), label)


def _evidence_title(tenant: Tenant, framework_title: str, period: Period) -> str:
    last_day = period.end - dt.timedelta(days=1)
    return (
        f"{ReportKind.EVIDENCE_PACK.label}: {tenant.name}, {framework_title}, "
        f"{period.start.isoformat()} to {last_day.isoformat()}"
    )[:200]


def evidence_pack_request(
    *,
    tenant: Tenant,
    framework_code: str,
    period_start: dt.date,
    period_end: dt.date,
    user=None,
    token=None,
) -> JobRun:
    """Ask the job engine for ``tenant``'s evidence pack of a framework and days (inclusive);
    the framework and period are checked here, so a bad one is refused before anything runs.
    Returns the queued run."""
    evidence_pack_period(period_start=period_start, period_end=period_end)
    evidence_framework(framework_code)
    return job_submit(
        tenant=tenant,
        kind=EVIDENCE_PACK_JOB_KIND,
        parameters={
            "framework": framework_code,
            "from": period_start.isoformat(),
            "to": period_end.isoformat(),
        },
        trigger=JobTrigger.USER,
        user=user,
        token=token,
    )


def evidence_pack_build(
    *,
    tenant: Tenant,
    framework_code: str,
    period_start: dt.date,
    period_end: dt.date,
    now: dt.datetime | None = None,
    progress: Callable[[float, str], None] = _no_progress,
) -> BuiltEvidencePack:
    """Build the pack (``build_evidence_pack``, stamped ``now``) and store its zip with its
    SHA-256. Records nothing: ``evidence_pack_record`` does."""
    now = (now or timezone.now()).replace(microsecond=0)
    period = evidence_pack_period(period_start=period_start, period_end=period_end)
    framework = evidence_framework(framework_code)
    progress(10, f"Collecting the {framework.title} evidence")
    data = build_evidence_pack(
        tenant=tenant,
        framework_code=framework_code,
        period_start=period_start,
        period_end=period_end,
        generated_at=now,
    )
    progress(70, "Storing the zip")
    stored = _store(tenant, period, ReportKind.EVIDENCE_PACK, ReportFormat.ZIP, data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = sorted(archive.namelist())
    figures = {
        "period": {
            "label": period.label,
            "from": period_start.isoformat(),
            "to": period_end.isoformat(),
            "timezone": str(tenant_zone(tenant)),
        },
        "framework": {
            "code": framework.code,
            "title": framework.title,
            "version": framework.version,
        },
        "files": files,
    }
    progress(90, "Recording the evidence pack")
    return BuiltEvidencePack(tenant, framework_code, period, figures, stored, now)


def evidence_pack_record(
    *, built: BuiltEvidencePack, job_run_id: int | None = None, requested_by_label: str = ""
) -> Report:
    """Insert ``built`` as the next version of its framework and period, published at once
    (an evidence pack has nothing to edit) with its ``report.ready`` event."""
    tenant, period = built.tenant, built.period
    framework = built.figures["framework"]

    def build_row() -> Report:
        return Report(
            tenant=tenant,
            kind=ReportKind.EVIDENCE_PACK,
            framework=built.framework_code,
            period_start=period.start,
            period_end=period.end,
            period_label=period.label,
            version=_next_version(tenant, ReportKind.EVIDENCE_PACK, period, built.framework_code),
            status=ReportStatus.PUBLISHED,
            title=_evidence_title(tenant, framework["title"], period),
            time_zone=built.figures["period"]["timezone"],
            figures=built.figures,
            zip_file=built.zip.name,
            zip_sha256=built.zip.sha256,
            zip_size=built.zip.size,
            job_run_id=job_run_id,
            requested_by_label=requested_by_label[:200],
            generated_at=built.generated_at,
            published_at=built.generated_at,
            published_by_label="automatic",
        )

    return _recorded(tenant, build_row)


def evidence_pack_generate(
    *,
    tenant: Tenant,
    framework_code: str,
    period_start: dt.date,
    period_end: dt.date,
    now: dt.datetime | None = None,
    job_run_id: int | None = None,
    requested_by_label: str = "",
) -> Report:
    """``evidence_pack_build`` then ``evidence_pack_record``: a new published version."""
    built = evidence_pack_build(
        tenant=tenant,
        framework_code=framework_code,
        period_start=period_start,
        period_end=period_end,
        now=now,
    )
    return evidence_pack_record(
        built=built, job_run_id=job_run_id, requested_by_label=requested_by_label
    )
