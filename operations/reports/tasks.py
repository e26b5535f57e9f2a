"""Celery tasks of reports. Thin: the schedule's fan-out is a service."""

from __future__ import annotations

from celery import shared_task

from operations.jobs.registry import MAINTENANCE_QUEUE
from operations.reports.services import reports_schedule_monthly


@shared_task(name="reports.schedule_monthly", queue=MAINTENANCE_QUEUE, ignore_result=True)
def schedule_monthly() -> int:
    """Submit last month's report for each active tenant early in its month (once each)."""
    return len(reports_schedule_monthly())
