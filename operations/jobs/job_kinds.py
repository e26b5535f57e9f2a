"""The engine's own job kinds: ``noop`` (end-to-end check, the bench) and ``diagnostic``."""

from __future__ import annotations

import time

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
    description="Checks that a worker runs this tenant's jobs in its scope, and only there.",
    queue=MAINTENANCE_QUEUE,
    trigger_capability="staff_write",
    max_attempts=1,
)
def diagnostic(run, parameters: dict) -> dict:
    # The result and the log are visible to the tenant's users: no host names, versions or
    # other tenants' figures here (the worker's name is on the run, for staff).
    with run.scope():
        visible_runs = JobRun.objects.count()
        rls_isolated = None
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting(%s, true)", [RLS_SETTING])
                scope_setting = cursor.fetchone()[0]
            # Row-level security: even an unscoped query sees only this tenant's rows.
            foreign = JobRun.objects.unscoped().exclude(tenant_id=run.tenant_id).exists()
            rls_isolated = scope_setting == str(run.tenant_id) and not foreign
    run.log(f"This tenant's runs visible to the worker: {visible_runs}.")
    return {
        "database": connection.vendor,
        "broker": settings.CELERY_BROKER_URL.split("://", 1)[0],
        "tenant_runs_visible": visible_runs,
        "row_level_security_isolates": rls_isolated,
    }
