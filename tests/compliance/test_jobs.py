"""The ``compliance_scan`` job kind: per tenant, fleet-wide, nightly, and safe under
redelivery (in process, and with a real worker killed with SIGKILL mid-scan on PostgreSQL)."""

from __future__ import annotations

import pytest
from django.db import connection

from operations.compliance.models import ComplianceScan, Finding
from operations.compliance.services import compliance_run_for_tenant
from operations.jobs import services as job_services
from operations.jobs.execution import JobContext, claim
from operations.jobs.models import JobRun, JobStatus
from operations.jobs.registry import get_job_kind
from tenants.models import Tenant
from tenants.scoping import rls_set_statement, tenant_scope
from tests.compliance.builders import good_deployment, good_system
from tests.conftest import requires_postgres
from tests.jobs.conftest import activate, deliver, expire_lease, logs_of, reload
from tests.jobs.worker import wait_until


def finding_keys(tenant) -> list[tuple]:
    with tenant_scope(tenant.id):
        return sorted(
            Finding.objects.values_list("check_code", "subject_type", "subject_id", "status")
        )


def scans_of(tenant, run=None) -> int:
    with tenant_scope(tenant.id):
        scans = ComplianceScan.objects.all()
        if run is not None:
            scans = scans.filter(job_run_id=run.pk)
        return scans.count()


@pytest.mark.django_db
def test_a_scan_job_runs_the_checks_and_records_its_summary(tenant_a, tenant_b, sent):
    good_system(tenant_a, business_owner="")
    good_system(tenant_b, business_owner="")
    run = job_services.job_submit(tenant=tenant_a, kind="compliance_scan")
    assert deliver(run) == "succeeded"
    run = reload(run)
    assert run.result["failed"] >= 1
    assert set(run.result["scores"]) == {"eu-ai-act", "iso-42001", "nist-ai-rmf"}
    assert any("checks:" in line for line in logs_of(run))
    assert scans_of(tenant_a, run) == 1
    assert finding_keys(tenant_b) == []  # B's estate was not read, B has no findings
    # A redelivered message for the finished run does nothing.
    assert deliver(run) == "already finished"
    assert scans_of(tenant_a) == 1


@pytest.mark.django_db
def test_an_attempt_lost_after_the_scan_committed_does_not_scan_again(tenant_a, sent):
    good_system(tenant_a, business_owner="", risk_tier="prohibited", stage="pilot")
    good_deployment(tenant_a, monitoring_enabled=False)
    run = job_services.job_submit(tenant=tenant_a, kind="compliance_scan")
    # Attempt 1: the worker claims the run and commits the scan, then dies before finishing.
    claimed, ok = claim(run_id=run.pk, tenant_id=tenant_a.id, task_id=str(run.task_id))
    assert ok
    context = JobContext(claimed, get_job_kind("compliance_scan"))
    context.once("scan", lambda: compliance_run_for_tenant(tenant=tenant_a, job_run_id=run.pk))
    keys = finding_keys(tenant_a)
    expire_lease(run)
    # Attempt 2 (the redelivery) takes over and finishes without scanning again.
    assert deliver(run) == "succeeded"
    run = reload(run)
    assert (run.status, run.attempts) == (JobStatus.SUCCEEDED, 2)
    assert scans_of(tenant_a) == 1
    assert finding_keys(tenant_a) == keys
    from operations.incidents.models import Incident

    with tenant_scope(tenant_a.id):
        assert Incident.objects.filter(category="compliance").count() == 1


@pytest.mark.django_db
def test_the_same_job_run_never_scans_twice_even_without_the_checkpoint(tenant_a):
    good_system(tenant_a)
    first = compliance_run_for_tenant(tenant=tenant_a, job_run_id=4242)
    again = compliance_run_for_tenant(tenant=tenant_a, job_run_id=4242)
    assert again == {k: v for k, v in first.items() if k != "incidents_opened"}
    assert scans_of(tenant_a) == 1


@pytest.mark.django_db
def test_a_fleet_scan_scans_every_active_tenant_in_its_own_scope(
    tenant_a, tenant_b, eager, committed
):
    from tests.factories import TenantFactory

    prospect = TenantFactory(name="Prospect Ltd", slug="prospect")
    good_system(prospect, business_owner="")
    active = [activate(tenant) for tenant in (tenant_a, tenant_b)]
    for tenant in active:
        good_system(tenant, business_owner="")
        good_system(tenant)
    with committed():
        parent = job_services.job_submit_fleet(kind="compliance_scan", label="ops")
    parent = reload(parent)
    assert (parent.status, parent.children_total, parent.children_succeeded) == (
        JobStatus.SUCCEEDED,
        2,
        2,
    )
    with tenant_scope(*Tenant.objects.values_list("id", flat=True)):
        children = list(JobRun.objects.filter(parent_id=parent.pk))
    for tenant in active:
        assert scans_of(tenant) == 1
        from operations.inventory.models import AISystem

        with tenant_scope(tenant.id):
            own = set(AISystem.objects.values_list("id", flat=True))
        assert {key[2] for key in finding_keys(tenant) if key[1] == "ai_system"} == own
    assert finding_keys(prospect) == []
    assert {child.tenant_id for child in children} == {t.id for t in active}


@pytest.mark.django_db
def test_an_active_tenant_gets_a_nightly_compliance_scan(tenant_a):
    activate(tenant_a)
    with tenant_scope(tenant_a.id):
        from operations.jobs.models import JobSchedule

        keys = set(JobSchedule.objects.values_list("key", flat=True))
    assert "nightly:compliance_scan" in keys


# --- A real worker, killed mid-scan ------------------------------------------------------------


def _lock_one_finding(tenant):
    """Hold a row lock on one of the tenant's findings from another connection, so a scan's
    upsert blocks there: the worker is then mid-scan, inside its transaction."""
    import psycopg

    settings = connection.settings_dict
    other = psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
    )
    other.execute(*rls_set_statement([tenant.id]))
    row = other.execute(
        "SELECT id FROM compliance_finding WHERE tenant_id = %s ORDER BY id LIMIT 1 FOR UPDATE",
        [tenant.id],
    ).fetchone()
    assert row is not None
    return other


def _someone_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0] > 0


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_scan_is_replaced_and_the_findings_are_written_once(pool):
    from tests.factories import TenantFactory

    tenant = TenantFactory(name="Killjoy Compliance", slug="killjoy-compliance")
    for number in range(3):
        good_system(tenant, business_owner="", name=f"System {number}")
        good_deployment(tenant, monitoring_enabled=False)
    compliance_run_for_tenant(tenant=tenant)  # the findings exist; the job's scan updates them
    keys = finding_keys(tenant)
    with pool.broker():
        lock = _lock_one_finding(tenant)
        try:
            first = pool.start()
            run = job_services.job_submit(tenant=tenant, kind="compliance_scan")
            wait_until(
                lambda: reload(run).status == JobStatus.RUNNING and _someone_waits_for_a_lock(),
                what="the worker to be mid-scan, waiting on the locked finding",
                pool=pool,
            )
            first.kill()
        finally:
            lock.rollback()  # the dead worker's transaction then fails and rolls back
            lock.close()
        assert reload(run).status == JobStatus.RUNNING  # the dead worker left it running
        pool.start()
        wait_until(
            lambda: reload(run).status == JobStatus.SUCCEEDED,
            what="the run to be taken over and finished by the second worker",
            between=job_services.job_runs_recover,
            pool=pool,
        )
    run = reload(run)
    assert run.attempts == 2
    assert "Attempt 2 started (the previous attempt did not finish)." in logs_of(run)
    assert scans_of(tenant, run) == 1  # attempt 1's scan rolled back with its worker
    assert scans_of(tenant) == 2  # the direct scan and the job's
    assert finding_keys(tenant) == keys  # updated in place, never duplicated


@pytest.mark.django_db
def test_a_tenant_admin_triggers_a_scan_through_the_jobs_api(admin_a, tenant_a, eager, committed):
    good_system(tenant_a, business_owner="")
    kinds = admin_a.client.get(f"/api/v1/tenants/{tenant_a.slug}/jobs/kinds/").json()
    assert {"name": "compliance_scan", "can_trigger": True}.items() <= next(
        k for k in kinds if k["name"] == "compliance_scan"
    ).items()
    with committed():
        response = admin_a.client.post(
            f"/api/v1/tenants/{tenant_a.slug}/jobs/", {"kind": "compliance_scan"}
        )
    assert response.status_code == 201, response.content
    run = JobRun.objects.unscoped().filter(pk=response.json()["id"])
    with tenant_scope(tenant_a.id):
        assert run.get().status == JobStatus.SUCCEEDED
    findings = admin_a.client.get(f"/api/v1/tenants/{tenant_a.slug}/compliance/findings/")
    assert findings.json()["count"] > 0
