"""Readiness in the MSP console: scoped to the staff member's tenants, read-only, inputs shown
as tables, and "rescore now" queuing a scan per selected tenant."""

from __future__ import annotations

import pytest
from django.urls import reverse

from operations.jobs.models import JobRun
from operations.readiness.models import Assessment, ReadinessFramework, ReadinessScore
from operations.readiness.services import readiness_rescore
from tenants.models import MspRole
from tenants.scoping import tenant_scope
from tests.factories import login_verified, make_staff
from tests.readiness.builders_core import submitted_assessment

pytestmark = pytest.mark.django_db


def url(model, view: str, *args) -> str:
    return reverse(f"admin:readiness_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def scored(tenant_a, tenant_b, framework):
    scores = {}
    for tenant in (tenant_a, tenant_b):
        submitted_assessment(tenant, framework, value=3)
        with tenant_scope(tenant.id):
            scores[tenant.slug] = readiness_rescore(tenant=tenant)
    return scores


def test_pages_open_list_only_assigned_tenants_and_show_inputs_as_tables(
    client, tenant_a, scored, framework
):
    login_verified(client, make_staff(tenant_a, role=MspRole.ENGINEER))
    for model in (ReadinessFramework, Assessment, ReadinessScore):
        page = client.get(url(model, "changelist"))
        assert page.status_code == 200, model
        if model is not ReadinessFramework:
            assert {row.tenant_id for row in page.context["cl"].result_list} == {tenant_a.id}
    detail = client.get(url(ReadinessScore, "change", scored["acme"].pk)).content.decode()
    assert "<table>" in detail
    assert "Mean time to resolve (90 d)" in detail
    assert "no data" in detail
    assert "strategy.vision" in detail
    assert client.get(url(ReadinessScore, "change", scored["borealis"].pk)).status_code == 302
    outline = client.get(url(ReadinessFramework, "change", framework.pk)).content.decode()
    assert "Transforming" in outline


def test_rows_are_read_only_and_rescore_now_queues_a_scan(client, tenant_a, scored, sent):
    login_verified(client, make_staff(tenant_a, role=MspRole.ENGINEER))
    assert client.get(url(ReadinessScore, "add")).status_code == 403
    response = client.post(
        url(ReadinessScore, "changelist"),
        {"action": "rescore_tenants_now", "_selected_action": [scored["acme"].pk]},
    )
    assert response.status_code == 302
    with tenant_scope(tenant_a.id):
        assert list(JobRun.objects.values_list("kind", flat=True)) == ["readiness_scan"]


def test_an_analyst_cannot_rescore(client, tenant_a, scored, sent):
    login_verified(client, make_staff(tenant_a, role=MspRole.ANALYST))
    page = client.get(url(ReadinessScore, "changelist"))
    assert "rescore_tenants_now" not in page.content.decode()
    with tenant_scope(tenant_a.id):
        assert not JobRun.objects.exists()
