"""Job kinds for the engine's tests. Imported by the tests and, through ``JOBS_KIND_MODULES``,
by the worker subprocess of the failure tests (``tests/jobs/worker_settings.py``)."""

from __future__ import annotations

import time
from pathlib import Path

from rest_framework import serializers

from msp.api.serializers import StrictSerializer
from operations.jobs.exceptions import TransientJobError
from operations.jobs.registry import job_kind
from tenants.audit import audit_record
from tenants.models import AuditEvent

EFFECT_TYPE = "jobs.TestEffect"
# Bounded: a test that never releases the job must not leave it waiting forever.
RELEASE_WAIT_SECONDS = 120


class CountableParameters(StrictSerializer):
    release_file = serializers.CharField(required=False, default="")
    started_file = serializers.CharField(required=False, default="")


def effect(run, step: int) -> None:
    """One countable effect: an audit event keyed by (run, step), in the run's tenant."""

    class Subject:
        pk = f"{run.id}:{step}"

        def __str__(self):
            return f"effect {step} of run {run.id}"

    audit_record(tenant=run.tenant, action="create", instance=Subject(), object_type=EFFECT_TYPE)


def effects_of(run_id: int) -> list[str]:
    return sorted(
        AuditEvent.objects.filter(
            object_type=EFFECT_TYPE, object_id__startswith=f"{run_id}:"
        ).values_list("object_id", flat=True)
    )


@job_kind("test_countable", parameters=CountableParameters, max_attempts=3)
def countable(run, parameters):
    """Effect 1, then (optionally) wait for a release file, then effect 2; each exactly once."""
    run.once("effect:1", lambda: effect(run, 1))
    if parameters["release_file"]:
        run.progress(50, "Waiting for the release file")
        if parameters["started_file"]:
            Path(parameters["started_file"]).write_text(str(run.attempt))
        deadline = time.monotonic() + RELEASE_WAIT_SECONDS
        while not Path(parameters["release_file"]).exists():
            if time.monotonic() > deadline:
                raise TimeoutError("never released")
            run.check_cancelled()
            time.sleep(0.05)
    run.once("effect:2", lambda: effect(run, 2))
    return {"effects": 2, "attempt": run.attempt}


class TransientParameters(StrictSerializer):
    succeed_on_attempt = serializers.IntegerField(min_value=1)


@job_kind("test_transient", parameters=TransientParameters, max_attempts=3)
def transient(run, parameters):
    if run.attempt < parameters["succeed_on_attempt"]:
        raise TransientJobError(f"upstream busy on attempt {run.attempt}")
    return {"attempt": run.attempt}


@job_kind("test_failing")
def failing(run, parameters):
    run.log("About to fail")
    raise ValueError("boom: the secret internals")


class CancelParameters(StrictSerializer):
    cancel_at_step = serializers.IntegerField(min_value=1)


@job_kind("test_self_cancelling", parameters=CancelParameters)
def self_cancelling(run, parameters):
    """Asks for its own cancellation at a step (another user would, concurrently)."""
    from operations.jobs.models import JobRun
    from operations.jobs.services import job_cancel

    for step in range(1, 6):
        if step == parameters["cancel_at_step"]:
            with run.scope():
                job_cancel(run=JobRun.objects.get(pk=run.id), label="tester")
        run.progress(step * 20, f"step {step}")
        run.log(f"did step {step}")
    return {"steps": 5}


@job_kind("test_tenant_echo", max_attempts=2)
def tenant_echo(run, parameters):
    """Reports what the run's scope sees (fleet fan-out and isolation tests)."""
    from operations.jobs.models import JobRun

    with run.scope():
        tenants = sorted(set(JobRun.objects.values_list("tenant_id", flat=True)))
    return {"tenant": run.tenant_id, "visible_tenants": tenants}


@job_kind("test_progress_in_scope")
def progress_in_scope(run, parameters):
    """Reports progress inside its own scoped transaction, then says how that would commit."""
    from django.db import connection

    with run.scope():
        run.progress(50, "inside the kind's own transaction")
        if connection.vendor != "postgresql":
            return {"synchronous_commit": None}
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return {"synchronous_commit": cursor.fetchone()[0]}
