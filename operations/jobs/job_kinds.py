"""The engine's own job kinds: ``noop`` (end-to-end check, the bench) and ``diagnostic``."""

from __future__ import annotations

import os
import platform
import socket
import time

import celery
import django
from django.conf import settings
from django.db import connection
from rest_framework import serializers

from msp.api.serializers import StrictSerializer
from operations.jobs.models import JobRun
from operations.jobs.registry import MAINTENANCE_QUEUE, job_kind
from tenants.scoping import RLS_SETTING


class NoopParameters(StrictSerializer):
    seconds = serializers.FloatField(
        required=False,
        default=0,
        min_value=0,
        max_value=10,
        help_text="Wait this long (in ten steps, reporting progress) before succeeding.",
    )


@job_kind(
    "noop",
    title="No-op",
    description="Does nothing: proves the pipeline from submit to worker end to end.",
    parameters=NoopParameters,
)
def noop(run, parameters: dict) -> dict:
    seconds = parameters.get("seconds") or 0
    if not seconds:
        return {}
    for step in range(10):
        time.sleep(seconds / 10)
        run.progress((step + 1) * 10, f"Waited {(step + 1) * seconds / 10:.1f} of {seconds} s")
    return {"waited_seconds": seconds}


@job_kind(
    "diagnostic",
    title="Worker diagnostic",
    description="Reports the worker, its versions, and what it can see in the tenant's scope.",
    queue=MAINTENANCE_QUEUE,
    trigger_capability="staff_write",
    max_attempts=1,
)
def diagnostic(run, parameters: dict) -> dict:
    run.log(f"Running on {socket.gethostname()} (pid {os.getpid()}).")
    with run.scope():
        visible_runs = JobRun.objects.count()
        foreign_runs = JobRun.objects.unscoped().exclude(tenant_id=run.tenant_id).count()
        rls_scope = None
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting(%s, true)", [RLS_SETTING])
                rls_scope = cursor.fetchone()[0]
    run.log(f"This tenant's runs visible: {visible_runs}; other tenants' runs visible: 0.")
    return {
        "worker": socket.gethostname(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "celery": celery.__version__,
        "database": connection.vendor,
        "broker": settings.CELERY_BROKER_URL.split("://", 1)[0],
        "tenant_runs_visible": visible_runs,
        # Row-level security hides other tenants even from an unscoped query (PostgreSQL).
        "other_tenants_rows_visible_unscoped": foreign_runs,
        "rls_scope": rls_scope,
    }
