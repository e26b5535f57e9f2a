from __future__ import annotations

from contextlib import contextmanager

import pytest

import tests.jobs.kinds  # noqa: F401 - registers the test job kinds
from msp.celery import app
from operations.jobs import outbox
from tenants import services as tenant_services
from tenants.models import TenantStatus
from tenants.scoping import tenant_scope


@pytest.fixture
def eager(django_capture_on_commit_callbacks):
    """Tasks run in-process when the outbox sends them (after the transaction commits)."""
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = previous


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run the block's on-commit callbacks when it ends (the outbox sender among them)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@contextmanager
def only_nightly(*names: str):
    """Exactly the test kinds ``names`` are nightly for the block (other apps' nightly kinds,
    such as the compliance scan, are set aside and restored after)."""
    from operations.jobs.registry import (
        JobKind,
        nightly_job_kinds,
        register_job_kind,
        unregister_job_kind,
    )

    others = nightly_job_kinds()
    for kind in others:
        unregister_job_kind(kind.name)
    for name in names:
        register_job_kind(JobKind(name=name, func=_nightly_noop, nightly=True))
    try:
        yield
    finally:
        for name in names:
            unregister_job_kind(name)
        for kind in others:
            register_job_kind(kind)


def _nightly_noop(run, parameters):
    return {}


def activate(tenant):
    for status in (TenantStatus.ONBOARDING, TenantStatus.ACTIVE):
        if status == TenantStatus.ACTIVE:
            with tenant_scope(tenant.id):
                from tenants.models import OnboardingStep

                for step in OnboardingStep.objects.filter(required=True):
                    tenant_services.onboarding_step_set_done(tenant=tenant, step=step, done=True)
        tenant = tenant_services.tenant_transition(tenant=tenant, to_status=status)
    return tenant


def reload(run):
    from operations.jobs.models import JobRun

    manager = JobRun.fleet if run.tenant_id is None else JobRun.objects
    if run.tenant_id is None:
        return manager.get(pk=run.pk)
    with tenant_scope(run.tenant_id):
        return manager.get(pk=run.pk)


def logs_of(run) -> list[str]:
    from operations.jobs.models import JobLog

    if run.tenant_id is None:
        return list(JobLog.fleet.filter(run_id=run.pk).values_list("message", flat=True))
    with tenant_scope(run.tenant_id):
        return list(JobLog.objects.filter(run_id=run.pk).values_list("message", flat=True))


@pytest.fixture
def sent(monkeypatch):
    """Messages the outbox hands to Celery, recorded instead of published."""
    messages: list[dict] = []

    def record(app, producer, row):
        messages.append(
            {
                "task": row.task_name,
                "kwargs": row.kwargs,
                "task_id": row.task_id,
                "queue": row.queue,
            }
        )

    monkeypatch.setattr(outbox, "publish_message", record)
    return messages


def deliver(run) -> str:
    """One delivery of the run's message, as a worker would receive it."""
    from operations.jobs.tasks import execute_job_run

    return execute_job_run.apply(
        kwargs={"run_id": run.pk, "tenant_id": run.tenant_id}, task_id=str(run.task_id)
    ).get()


def expire_lease(run) -> None:
    """As if the worker holding the run had stopped renewing its lease."""
    from django.utils import timezone

    from operations.jobs.execution import runs_in
    from tenants.scoping import scoped_atomic

    with scoped_atomic(run.tenant_id):
        runs_in(run.tenant_id).filter(pk=run.pk).update(
            lease_expires_at=timezone.now() - timezone.timedelta(seconds=1)
        )
