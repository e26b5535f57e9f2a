"""Reads of the job engine. Callers are inside the run's tenant scope (or reading fleet runs)."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from operations.jobs.execution import logs_in
from operations.jobs.models import JobLog, JobRun, JobStatus
from tenants.fleet import FleetCell


def job_run_log_tail(*, run: JobRun, limit: int) -> tuple[list[JobLog], bool]:
    """The newest ``limit`` log lines of ``run`` in order, and whether older ones were left out."""
    newest = list(logs_in(run.tenant_id).filter(run_id=run.pk).order_by("-id")[: limit + 1])
    truncated = len(newest) > limit
    return list(reversed(newest[:limit])), truncated


def job_run_logs_after(*, run: JobRun, after_id: int = 0, limit: int = 500) -> list[JobLog]:
    """Log lines of ``run`` written after line ``after_id`` (for polling), oldest first."""
    lines = logs_in(run.tenant_id).filter(run_id=run.pk, id__gt=after_id).order_by("id")
    return list(lines[:limit])


# --- The fleet dashboard and the tenant 360 page -----------------------------------------------


def fleet_failed_runs(tenant_ids, *, now: dt.datetime | None = None) -> dict[int, FleetCell]:
    """Each tenant's job runs that failed in the last 24 hours. One query."""
    now = now or timezone.now()
    since = now - dt.timedelta(hours=24)
    rows = (
        JobRun.objects.unscoped()
        .filter(
            tenant_id__in=tenant_ids,
            status=JobStatus.FAILED,
            finished_at__gte=since,
            # Bounds the read on the (tenant, created) index: no run lasts a week.
            created_at__gte=now - dt.timedelta(days=7),
        )
        .order_by()
        .values_list("tenant_id")
        .annotate(count=Count("id"))
    )
    changelist = reverse("admin:jobs_jobrun_changelist")
    return {
        tenant_id: FleetCell(
            text=str(count),
            value=count,
            attention=min(3 * count, 15),
            tone="bad",
            link=f"{changelist}?status__exact=failed&tenant__id__exact={tenant_id}",
        )
        for tenant_id, count in rows
    }


def job_runs_recent(*, tenant, limit: int) -> list[JobRun]:
    """The tenant's newest ``limit`` job runs."""
    return list(JobRun.objects.filter(tenant=tenant).order_by("-created_at", "-id")[:limit])


def job_run_latest_of_kind(*, tenant, kind: str) -> JobRun | None:
    """The tenant's newest run of ``kind`` (queued, running or finished), if it has one."""
    return (
        JobRun.objects.filter(tenant=tenant, kind=kind)
        .select_related("triggered_by_user")
        .order_by("-created_at", "-id")
        .first()
    )


def job_run_counts_in_window(*, tenant, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """Runs of the tenant created in ``[start, end)`` per kind: ``{"kind", "runs",
    "succeeded", "failed"}``, most runs first. One query."""
    rows = (
        JobRun.objects.filter(tenant=tenant, created_at__gte=start, created_at__lt=end)
        .order_by()
        .values("kind")
        .annotate(
            runs=Count("id"),
            succeeded=Count("id", filter=Q(status=JobStatus.SUCCEEDED)),
            failed=Count("id", filter=Q(status=JobStatus.FAILED)),
        )
    )
    return sorted(rows, key=lambda row: (-row["runs"], row["kind"]))
