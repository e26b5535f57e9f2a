"""Telemetry in the MSP admin: rollups read-only and scoped, policies edited through the service."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from operations.telemetry import services
from operations.telemetry.models import TelemetryPolicy, TelemetryRollup
from tenants.models import AuditEvent, MspRole
from tenants.scoping import tenant_scope
from tests.factories import login_verified, make_staff
from tests.telemetry.helpers import iso, minutes_ago

pytestmark = pytest.mark.django_db


def url(model, view: str, *args) -> str:
    return reverse(f"admin:telemetry_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def rolled_up(tenant_a, tenant_b, estate):
    for tenant, resource in ((tenant_a, "acme-gpu-sat-01"), (tenant_b, "borealis-gpu-01")):
        sample = {
            "resource": f"compute:{resource}",
            "metric": "gpu_utilization",
            "ts": iso(minutes_ago(90)),
            "value": 12.5,
        }
        with tenant_scope(tenant.id):
            services.telemetry_ingest_batch(tenant=tenant, samples=[sample])
            services.telemetry_rollup_pending(tenant=tenant)


def staff_client(client, *tenants, role=MspRole.ENGINEER):
    login_verified(client, make_staff(*tenants, role=role))
    return client


def test_rollups_are_listed_for_the_staff_members_tenants_only(
    client, tenant_a, tenant_b, rolled_up
):
    engineer = staff_client(client, tenant_a)
    page = engineer.get(url(TelemetryRollup, "changelist"))
    assert page.status_code == 200
    assert {row.tenant_id for row in page.context["cl"].result_list} == {tenant_a.id}
    assert "compute #" in page.content.decode()
    with tenant_scope(tenant_b.id):
        foreign = TelemetryRollup.objects.get()
    assert engineer.get(url(TelemetryRollup, "change", foreign.pk)).status_code in (302, 404)


def test_rollups_are_read_only_even_for_the_msp_admin(client, tenant_a, rolled_up):
    boss = staff_client(client, role=MspRole.ADMIN)
    with tenant_scope(tenant_a.id):
        rollup = TelemetryRollup.objects.get()
    assert boss.get(url(TelemetryRollup, "changelist")).status_code == 200
    assert boss.get(url(TelemetryRollup, "add")).status_code == 403
    page = boss.get(url(TelemetryRollup, "change", rollup.pk))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert boss.post(url(TelemetryRollup, "delete", rollup.pk), {"post": "yes"}).status_code == 403
    with tenant_scope(tenant_a.id):
        assert TelemetryRollup.objects.get().min_value == 12.5


def test_an_engineer_sets_a_policy_through_the_service(client, tenant_a):
    engineer = staff_client(client, tenant_a)
    response = engineer.post(
        url(TelemetryPolicy, "add"),
        {"tenant": tenant_a.pk, "raw_retention_days": 14, "rollup_retention_days": 365},
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    with tenant_scope(tenant_a.id):
        policy = TelemetryPolicy.objects.get()
    assert (policy.raw_retention_days, policy.rollup_retention_days) == (14, 365)
    response = engineer.post(
        url(TelemetryPolicy, "change", policy.pk),
        {"raw_retention_days": 60, "rollup_retention_days": 365},
    )
    assert response.status_code == 302
    with tenant_scope(tenant_a.id):
        assert TelemetryPolicy.objects.get().raw_retention_days == 60
    events = AuditEvent.objects.filter(tenant=tenant_a, object_type="telemetry.TelemetryPolicy")
    assert sorted(events.values_list("action", flat=True)) == ["create", "update"]
    assert events.get(action="update").changes["raw_retention_days"] == [14, 60]


def test_a_policy_keeping_rollups_shorter_than_samples_is_a_form_error(client, tenant_a):
    engineer = staff_client(client, tenant_a)
    response = engineer.post(
        url(TelemetryPolicy, "add"),
        {"tenant": tenant_a.pk, "raw_retention_days": 90, "rollup_retention_days": 60},
    )
    assert response.status_code == 200
    assert "rollup_retention_days" in response.context["adminform"].form.errors
    with tenant_scope(tenant_a.id):
        assert not TelemetryPolicy.objects.exists()


def test_an_analyst_reads_policies_but_cannot_change_them(client, tenant_a):
    with tenant_scope(tenant_a.id):
        policy = services.telemetry_policy_update(tenant=tenant_a, raw_retention_days=10)
    analyst = staff_client(client, tenant_a, role=MspRole.ANALYST)
    assert analyst.get(url(TelemetryPolicy, "changelist")).status_code == 200
    response = analyst.post(
        url(TelemetryPolicy, "change", policy.pk),
        {"raw_retention_days": 300, "rollup_retention_days": 400},
    )
    assert response.status_code == 403
    with tenant_scope(tenant_a.id):
        assert TelemetryPolicy.objects.get().raw_retention_days == 10


def test_rollup_changelist_queries_do_not_grow_with_rows(
    client, tenant_a, estate, django_assert_max_num_queries
):
    boss = staff_client(client, role=MspRole.ADMIN)
    hour = minutes_ago(60 * 5).replace(minute=0, second=0)
    with tenant_scope(tenant_a.id):
        for offset in range(30):
            TelemetryRollup.objects.create(
                tenant=tenant_a,
                resource_kind=1,
                resource_id=estate["node"].pk,
                metric=1,
                bucket=hour - dt.timedelta(hours=offset),
                min_value=1,
                max_value=2,
                avg_value=1.5,
                sample_count=2,
                computed_at=hour,
            )
    boss.get(url(TelemetryRollup, "changelist"))
    with django_assert_max_num_queries(20):
        assert boss.get(url(TelemetryRollup, "changelist")).status_code == 200
