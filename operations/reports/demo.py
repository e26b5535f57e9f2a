"""Demo reports: last month's service report for every active tenant (each the result of a
finished ``monthly_service_report`` run, so the jobs page shows it), and for the first tenant a
draft quarterly review of the quarter in progress with the MSP's summary, for staff to edit
and publish, and last month's EU AI Act evidence pack (a finished ``compliance_evidence_pack``
run).

Idempotent: a tenant that has a report of last month already is left as it is.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.utils import timezone

from operations.compliance.evidence import evidence_framework
from operations.jobs.models import JobLog, JobRun, JobStatus, JobTrigger, LogLevel
from operations.reports import services
from operations.reports.figures import tenant_zone
from operations.reports.models import Report, ReportKind
from operations.reports.periods import period_last_complete, quarter_period
from tenants.audit import AUTOMATIC_LABEL, AuditActor, audit_actor_unless_set
from tenants.models import Tenant, TenantStatus
from tenants.scoping import tenant_scope

DEMO_FRAMEWORK = "eu-ai-act"
DEMO_ACTOR = AuditActor(label=AUTOMATIC_LABEL, source="command")
REVIEW_SUMMARY = (
    "A steady quarter: every SEV1 was acknowledged inside its target, GPU spend stayed under "
    "budget, and the compliance score rose after the model-card work."
)
REVIEW_PROPOSALS = (
    "Move the customer-support assistant from pilot to production\n"
    "Release the idle inference nodes named in the recommendations\n"
    "Run the ISO/IEC 42001 gap review before the next audit"
)


def _finished_run(
    tenant: Tenant, *, kind: str, period_label: str, at: dt.datetime, parameters=None
) -> JobRun:
    run = JobRun(
        tenant=tenant,
        kind=kind,
        status=JobStatus.RUNNING,
        queue="jobs",
        parameters=parameters or {"period": period_label},
        trigger=JobTrigger.USER if parameters else JobTrigger.SCHEDULE,
        triggered_by_label="demo" if parameters else "schedule monthly:reports",
        dedupe_key=f"demo:{tenant.id}:report:{kind}:{period_label}",
        created_at=at,
        started_at=at,
        attempts=1,
        worker="worker-1:4121",
    )
    run.save(force_insert=True)
    return run


def _finish(run: JobRun, report: Report) -> None:
    finished = timezone.now()
    run.status = JobStatus.SUCCEEDED
    run.result = {"report": report.pk, "version": report.version, "period": report.period_label}
    run.progress = 100
    run.finished_at = run.heartbeat_at = finished
    run.save()
    JobLog.objects.create(
        tenant=run.tenant,
        run=run,
        at=finished,
        level=LogLevel.INFO,
        message=f"Recorded version {report.version} ({report.status}).",
        attempt=1,
    )


def seed_reports(tenant: Tenant, *, with_review: bool = False) -> int:
    """Last month's report (active tenants), and a draft review when asked. Returns how many
    reports were made."""
    if tenant.status != TenantStatus.ACTIVE:
        return 0
    now = timezone.now()
    today = now.astimezone(tenant_zone(tenant)).date()
    made = 0
    wanted = [(ReportKind.MONTHLY, period_last_complete(ReportKind.MONTHLY, today=today))]
    if with_review:
        # The quarter in progress: the demo's data is recent, and a review is drafted before
        # the quarter closes.
        wanted.append((ReportKind.QUARTERLY, quarter_period(today)))
    with audit_actor_unless_set(DEMO_ACTOR):
        for kind, period in wanted:
            with tenant_scope(tenant.id):
                if Report.objects.filter(kind=kind, period_start=period.start).exists():
                    continue
                run = _finished_run(
                    tenant, kind=services.JOB_KINDS[kind], period_label=period.label, at=now
                )
            report = services.report_generate(
                tenant=tenant, kind=kind, period=period, now=now, job_run_id=run.pk
            )
            if kind == ReportKind.QUARTERLY:
                report = services.report_draft_update(
                    report=report, summary=REVIEW_SUMMARY, proposals=REVIEW_PROPOSALS
                )
            with tenant_scope(tenant.id):
                _finish(run, report)
            made += 1
        if with_review:
            made += _seed_evidence_pack(tenant, wanted[0][1], now)
    return made


def _seed_evidence_pack(tenant: Tenant, month, now: dt.datetime) -> int:
    """Last month's EU AI Act evidence pack, as the compliance page's form would ask for it."""
    last_day = month.end - dt.timedelta(days=1)
    parameters = {"framework": DEMO_FRAMEWORK, "from": str(month.start), "to": str(last_day)}
    try:
        evidence_framework(DEMO_FRAMEWORK)
    except ValidationError:
        return 0  # the framework is not loaded: no pack
    with tenant_scope(tenant.id):
        if Report.objects.filter(kind=ReportKind.EVIDENCE_PACK, period_start=month.start).exists():
            return 0
        run = _finished_run(
            tenant,
            kind=services.EVIDENCE_PACK_JOB_KIND,
            period_label=month.label,
            at=now,
            parameters=parameters,
        )
    report = services.evidence_pack_generate(
        tenant=tenant,
        framework_code=DEMO_FRAMEWORK,
        period_start=month.start,
        period_end=last_day,
        now=now,
        job_run_id=run.pk,
    )
    with tenant_scope(tenant.id):
        _finish(run, report)
    return 1
