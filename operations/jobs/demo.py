"""Demo job runs and live schedules for a tenant.

``seed_jobs(tenant)`` is idempotent: each demo run carries a ``demo:`` dedupe key and is made only
when the tenant has no run with that key yet; schedules are ensured, never duplicated. An active
tenant gets its nightly schedules plus a diagnostic every 15 minutes, so the demo's beat and
worker visibly do work; the finished runs show logs, a failure (its traceback for staff only)
and a cancellation.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule

from operations.jobs import services
from operations.jobs.models import JobLog, JobRun, JobSchedule, JobStatus, JobTrigger, LogLevel
from tenants.audit import AUTOMATIC_LABEL, AuditActor, audit_actor_unless_set
from tenants.models import Tenant, TenantStatus
from tenants.scoping import tenant_scope

DEMO_ACTOR = AuditActor(label=AUTOMATIC_LABEL, source="command")
LIVE_SCHEDULE_KEY = "demo:diagnostic-every-15-minutes"

_FAILED_TRACEBACK = """Traceback (most recent call last):
  File "operations/jobs/execution.py", line 512, in job_run_execute
    result = kind.func(context, dict(run.parameters))
  File "operations/jobs/job_kinds.py", line 61, in diagnostic
    with run.scope():
psycopg.OperationalError: connection to server at "10.0.4.12", port 5432 failed: timeout expired
"""


def _runs(tenant: Tenant, now: dt.datetime) -> list[dict]:
    day = dt.timedelta(days=1)
    return [
        {
            "key": "diagnostic-ok",
            "kind": "diagnostic",
            "status": JobStatus.SUCCEEDED,
            "trigger": JobTrigger.USER,
            "label": "engineer",
            "created": now - 2 * day,
            "seconds": 1.8,
            "result": {
                "database": "postgresql",
                "broker": "redis",
                "tenant_runs_visible": 4,
                "row_level_security_isolates": True,
            },
            "logs": [(LogLevel.INFO, "This tenant's runs visible to the worker: 4.")],
        },
        {
            "key": "noop-api",
            "kind": "noop",
            "status": JobStatus.SUCCEEDED,
            "trigger": JobTrigger.TOKEN,
            "label": f"{tenant.slug}-integration (token gw_demo)",
            "parameters": {"seconds": 2.0},
            "created": now - day,
            "seconds": 2.1,
            "result": {"waited_seconds": 2.0},
            "logs": [],
        },
        {
            "key": "diagnostic-failed",
            "kind": "diagnostic",
            "status": JobStatus.FAILED,
            "trigger": JobTrigger.SCHEDULE,
            "label": f"schedule {LIVE_SCHEDULE_KEY}",
            "created": now - dt.timedelta(hours=6),
            "seconds": 30.4,
            "attempts": 1,
            "error": "OperationalError: connection to the database timed out",
            "traceback": _FAILED_TRACEBACK,
            "logs": [
                (LogLevel.ERROR, "Failed: OperationalError: connection to the database timed out"),
            ],
        },
        {
            "key": "noop-cancelled",
            "kind": "noop",
            "status": JobStatus.CANCELLED,
            "trigger": JobTrigger.USER,
            "label": "engineer",
            "parameters": {"seconds": 10.0},
            "created": now - dt.timedelta(hours=3),
            "seconds": 4.0,
            "progress": 40,
            "logs": [
                (
                    LogLevel.INFO,
                    "Cancellation requested by engineer; the job stops at its next progress point.",
                ),
                (LogLevel.INFO, "Stopped: the run was cancelled."),
            ],
        },
    ]


def _finished_run(tenant: Tenant, spec: dict) -> JobRun:
    started = spec["created"] + dt.timedelta(seconds=2)
    finished = started + dt.timedelta(seconds=spec["seconds"])
    status = spec["status"]
    run = JobRun(
        tenant=tenant,
        kind=spec["kind"],
        status=status,
        queue="maintenance" if spec["kind"] == "diagnostic" else "jobs",
        parameters=spec.get("parameters", {}),
        result=spec.get("result", {}),
        error=spec.get("error", ""),
        traceback=spec.get("traceback", ""),
        progress=spec.get("progress", 100 if status == JobStatus.SUCCEEDED else 0),
        progress_message="" if status == JobStatus.SUCCEEDED else status,
        attempts=spec.get("attempts", 1),
        max_attempts=1 if spec["kind"] == "diagnostic" else 3,
        trigger=spec["trigger"],
        triggered_by_label=spec["label"],
        dedupe_key=f"demo:{tenant.id}:{spec['key']}",
        created_at=spec["created"],
        started_at=started,
        finished_at=finished,
        heartbeat_at=finished,
        worker="worker-1:4121",
        cancel_requested_at=finished if status == JobStatus.CANCELLED else None,
        cancel_requested_by=spec["label"] if status == JobStatus.CANCELLED else "",
    )
    run.save(force_insert=True)
    step = (finished - started) / max(len(spec["logs"]) - 1, 1)
    JobLog.objects.bulk_create(
        JobLog(
            tenant=tenant,
            run=run,
            at=started + index * step,
            level=level,
            message=message,
            attempt=run.attempts,
        )
        for index, (level, message) in enumerate(spec["logs"])
    )
    return run


def _live_schedule(tenant: Tenant) -> JobSchedule:
    existing = JobSchedule.objects.filter(key=LIVE_SCHEDULE_KEY).first()
    if existing is not None:
        return existing
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="*/15",
        hour="*",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=tenant.plan.timezone,
    )
    return services.job_schedule_create(
        tenant=tenant,
        key=LIVE_SCHEDULE_KEY,
        kind="diagnostic",
        crontab=crontab,
        description=f"Worker diagnostic for {tenant.name}, every 15 minutes (demo)",
    )


def seed_jobs(
    tenant: Tenant, *, failures: bool = True, now: dt.datetime | None = None
) -> list[JobRun]:
    """Finished demo runs with logs (the failed one only with ``failures``: a calm tenant's
    runs all went through) and, for an active tenant, live schedules. Idempotent: returns the
    tenant's demo runs, made now or before."""
    now = now or timezone.now()
    with audit_actor_unless_set(DEMO_ACTOR), transaction.atomic(), tenant_scope(tenant.id):
        if tenant.status == TenantStatus.ACTIVE:
            services.job_schedules_ensure_for_tenant(tenant=tenant)
            _live_schedule(tenant)
        existing = set(
            JobRun.objects.filter(dedupe_key__startswith=f"demo:{tenant.id}:").values_list(
                "dedupe_key", flat=True
            )
        )
        for spec in _runs(tenant, now):
            if not failures and spec["status"] == JobStatus.FAILED:
                continue
            if f"demo:{tenant.id}:{spec['key']}" not in existing:
                _finished_run(tenant, spec)
        return list(JobRun.objects.filter(dedupe_key__startswith=f"demo:{tenant.id}:"))
