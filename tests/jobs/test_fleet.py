"""Fleet-wide runs: one child per tenant, created in chunks, under an aggregating parent."""

from __future__ import annotations

import pytest

from operations.jobs import services
from operations.jobs.execution import JobContext, _create_children, claim, fan_out
from operations.jobs.models import JobRun, JobStatus
from operations.jobs.registry import get_job_kind
from tenants.models import Tenant
from tenants.scoping import tenant_scope
from tests.factories import TenantFactory
from tests.jobs.conftest import activate, deliver, expire_lease, logs_of, reload

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(tenant_a, tenant_b):
    """Three active tenants and one prospect (left out of fleet runs)."""
    third = TenantFactory(name="Cobalt Care", slug="cobalt")
    TenantFactory(name="Dormant Prospect", slug="dormant")
    return [activate(tenant) for tenant in (tenant_a, tenant_b, third)]


def children_of(parent) -> list[JobRun]:
    with tenant_scope(*Tenant.objects.values_list("id", flat=True)):
        return list(JobRun.objects.filter(parent_id=parent.pk).order_by("tenant_id"))


def test_a_fleet_run_fans_out_one_child_per_active_tenant(fleet, eager, committed, settings):
    settings.JOBS_FLEET_CHUNK_SIZE = 2
    with committed():
        parent = services.job_submit_fleet(kind="test_tenant_echo", label="ops")
    parent = reload(parent)
    children = children_of(parent)
    assert [child.tenant_id for child in children] == [tenant.id for tenant in fleet]
    for child in children:
        # Each child ran in its own tenant's scope and saw only that tenant's runs.
        assert child.status == JobStatus.SUCCEEDED
        assert child.result == {"tenant": child.tenant_id, "visible_tenants": [child.tenant_id]}
        assert (child.trigger, child.triggered_by_label) == ("parent", f"fleet run {parent.pk}")
    assert parent.status == JobStatus.SUCCEEDED
    assert parent.tenant_id is None
    assert (parent.progress, parent.children_total, parent.children_succeeded) == (100, 3, 3)
    assert parent.result == {"tenants": 3, "succeeded": 3, "failed": 0, "cancelled": 0}
    assert {"tenants", "chunk:0", "chunk:1"} <= set(parent.checkpoints)
    assert any(line.startswith("All child runs finished") for line in logs_of(parent))


def test_the_parent_shows_aggregate_progress_as_children_finish(fleet, sent):
    parent = services.job_submit_fleet(kind="test_tenant_echo")
    assert deliver(parent) == "awaiting children"
    parent = reload(parent)
    assert (parent.status, parent.awaiting_children, parent.children_total) == ("running", True, 3)
    assert parent.lease_expires_at is None  # no worker holds it: the reaper leaves it alone
    first, second, third = children_of(parent)

    assert deliver(first) == "succeeded"
    parent = reload(parent)
    assert (parent.status, parent.progress) == (JobStatus.RUNNING, 33)
    assert parent.progress_message == "1 of 3 tenants done"

    services.job_cancel(run=third, label="client")
    assert reload(parent).progress == 66
    assert deliver(second) == "succeeded"
    parent = reload(parent)
    assert parent.status == JobStatus.SUCCEEDED
    assert parent.result == {"tenants": 3, "succeeded": 2, "failed": 0, "cancelled": 1}


def test_a_fleet_run_fails_when_tenant_runs_fail(fleet, eager, committed):
    with committed():
        parent = services.job_submit_fleet(kind="test_failing", tenant_ids=[fleet[0].id])
    parent = reload(parent)
    assert parent.status == JobStatus.FAILED
    assert parent.error == "1 of 1 tenant runs failed."
    # The failing child's traceback stays on the child, in its tenant.
    assert parent.traceback == ""


def test_cancelling_a_fleet_run_cancels_its_queued_children(fleet, sent):
    parent = services.job_submit_fleet(kind="test_tenant_echo")
    deliver(parent)
    services.job_cancel(run=reload(parent), label="ops")
    parent = reload(parent)
    assert parent.status == JobStatus.CANCELLED
    assert {child.status for child in children_of(parent)} == {JobStatus.CANCELLED}
    assert parent.children_cancelled == 3


def test_a_fan_out_taken_over_midway_creates_each_child_once(fleet, sent, settings):
    settings.JOBS_FLEET_CHUNK_SIZE = 1
    parent = services.job_submit_fleet(kind="test_tenant_echo")
    first, _ = claim(run_id=parent.pk, tenant_id=None, task_id=str(parent.task_id))
    context = JobContext(first, get_job_kind("test_tenant_echo"))
    # The first attempt creates the first chunk's child, then its worker dies.
    tenant_ids = context.once("tenants", lambda: [tenant.id for tenant in fleet])
    context.once("chunk:0", lambda: _create_children(context, tenant_ids[:1]))
    expire_lease(parent)

    assert deliver(parent) == "awaiting children"
    children = children_of(parent)
    assert [child.tenant_id for child in children] == [tenant.id for tenant in fleet]
    assert reload(parent).children_total == 3


def test_fleet_runs_are_outside_every_tenant_scope(fleet, sent):
    parent = services.job_submit_fleet(kind="test_tenant_echo")
    with tenant_scope(fleet[0].id):
        assert not JobRun.objects.filter(pk=parent.pk).exists()
    assert JobRun.fleet.filter(pk=parent.pk).exists()


def test_fan_out_refuses_a_kind_that_is_not_per_tenant(fleet):
    from django.core.exceptions import ValidationError

    from operations.jobs.registry import JobKind, register_job_kind, unregister_job_kind

    register_job_kind(JobKind(name="test_msp_wide", func=lambda run, p: None, tenant_scoped=False))
    try:
        with pytest.raises(ValidationError):
            services.job_submit_fleet(kind="test_msp_wide")
        with pytest.raises(ValidationError):
            services.job_submit(tenant=fleet[0], kind="test_msp_wide")
    finally:
        unregister_job_kind("test_msp_wide")
    assert fan_out  # the engine's fan-out is what the parent runs
