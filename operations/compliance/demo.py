"""Demo compliance data: two finished scans per tenant (a week apart, so scores have history)
and one waiver between them, accepting one failing finding for 90 days; or, for a client
mid-onboarding (``scans=1, waiver=False``), its first scan only, every finding still open.

Each scan is the result of a finished ``compliance_scan`` job run with a ``demo:`` dedupe key,
so the jobs page shows it with its summary; nightly schedules come from the kind's
``nightly=True`` (``seed_jobs`` ensures them for active tenants). Idempotent: a tenant that
has its demo runs already is left as it is. The finance estate's prohibited-practice proposal
opens a compliance incident on the first scan.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from operations.compliance import services
from operations.compliance.checks import get_check
from operations.compliance.models import Finding, FindingStatus
from operations.jobs.models import JobLog, JobRun, JobStatus, JobTrigger, LogLevel
from tenants.audit import AUTOMATIC_LABEL, AuditActor, audit_actor_unless_set
from tenants.models import Tenant
from tenants.scoping import tenant_scope

DEMO_ACTOR = AuditActor(label=AUTOMATIC_LABEL, source="command")


def _finished_scan(tenant: Tenant, *, key: str, at: dt.datetime) -> JobRun:
    run = JobRun(
        tenant=tenant,
        kind="compliance_scan",
        status=JobStatus.RUNNING,
        queue="jobs",
        trigger=JobTrigger.SCHEDULE,
        triggered_by_label="schedule nightly:compliance_scan",
        dedupe_key=f"demo:{tenant.id}:{key}",
        created_at=at,
        started_at=at + dt.timedelta(seconds=1),
        attempts=1,
        worker="worker-1:4121",
    )
    run.save(force_insert=True)
    summary = services.compliance_run_for_tenant(tenant=tenant, job_run_id=run.pk, now=at)
    finished = at + dt.timedelta(seconds=2)
    run.status = JobStatus.SUCCEEDED
    run.result = summary
    run.progress = 100
    run.finished_at = run.heartbeat_at = finished
    run.save()
    JobLog.objects.create(
        tenant=tenant,
        run=run,
        at=finished,
        level=LogLevel.INFO,
        message=(
            f"{summary['checks']} checks: {summary['passed']} passed, {summary['failed']} "
            f"failed, {summary['waived']} waived, {summary['not_applicable']} not applicable."
        ),
        attempt=1,
    )
    return run


def _waive_one(tenant: Tenant, *, now: dt.datetime) -> None:
    failing = Finding.objects.filter(tenant=tenant, status=FindingStatus.FAIL).order_by(
        "check_code", "subject_id"
    )
    for finding in failing:
        check = get_check(finding.check_code)
        if check is not None and check.waivable and finding.severity != "critical":
            services.waiver_create(
                tenant=tenant,
                check_code=finding.check_code,
                subject_type=finding.subject_type,
                subject_id=finding.subject_id,
                reason=(
                    f"Accepted while the owner remediates '{finding.subject_label}' "
                    "(tracked in the quarterly risk review)."
                ),
                approved_by="Chief Risk Officer",
                expires_at=now + dt.timedelta(days=90),
            )
            return


def seed_compliance(
    tenant: Tenant, *, scans: int = 2, waiver: bool = True, now: dt.datetime | None = None
) -> list[JobRun]:
    """Two finished scans a week apart with a waiver between them (or only the last ``scans``
    of them, and no waiver when ``waiver`` is false). Idempotent: returns the tenant's demo scan
    runs, made now or before."""
    now = now or timezone.now()
    prefix = f"demo:{tenant.id}:compliance-scan"
    with audit_actor_unless_set(DEMO_ACTOR), transaction.atomic(), tenant_scope(tenant.id):
        existing = list(JobRun.objects.filter(dedupe_key__startswith=prefix).order_by("pk"))
        if existing:
            return existing
        runs = []
        if scans > 1:
            runs.append(
                _finished_scan(tenant, key="compliance-scan-1", at=now - dt.timedelta(days=7))
            )
        if waiver:
            _waive_one(tenant, now=now)
        runs.append(_finished_scan(tenant, key="compliance-scan-2", at=now - dt.timedelta(hours=2)))
        return runs
