"""Reads of the job engine. Callers are inside the run's tenant scope (or reading fleet runs)."""

from __future__ import annotations

from operations.jobs.execution import logs_in
from operations.jobs.models import JobLog, JobRun


def job_run_log_tail(*, run: JobRun, limit: int) -> tuple[list[JobLog], bool]:
    """The newest ``limit`` log lines of ``run`` in order, and whether older ones were left out."""
    newest = list(logs_in(run.tenant_id).filter(run_id=run.pk).order_by("-id")[: limit + 1])
    truncated = len(newest) > limit
    return list(reversed(newest[:limit])), truncated


def job_run_logs_after(*, run: JobRun, after_id: int = 0, limit: int = 500) -> list[JobLog]:
    """Log lines of ``run`` written after line ``after_id`` (for polling), oldest first."""
    lines = logs_in(run.tenant_id).filter(run_id=run.pk, id__gt=after_id).order_by("id")
    return list(lines[:limit])
