"""Compliance in the MSP console: scoped to the staff member's tenants, computed rows
read-only, waivers written through the audited service."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from operations.compliance.models import ComplianceScan, Finding, Framework, Score, Waiver
from operations.compliance.services import compliance_run_for_tenant
from tenants.models import AuditEvent, MspRole
from tenants.scoping import tenant_scope
from tests.compliance.builders import good_system
from tests.factories import login_verified, make_staff

pytestmark = pytest.mark.django_db


def url(model, view: str, *args) -> str:
    return reverse(f"admin:compliance_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def scanned(tenant_a, tenant_b):
    for tenant in (tenant_a, tenant_b):
        good_system(tenant, business_owner="")
        compliance_run_for_tenant(tenant=tenant)


def test_every_compliance_page_opens_and_lists_only_assigned_tenants(
    client, tenant_a, tenant_b, scanned
):
    login_verified(client, make_staff(tenant_a, role=MspRole.ENGINEER))
    for model in (Framework, ComplianceScan, Finding, Score, Waiver):
        page = client.get(url(model, "changelist"))
        assert page.status_code == 200, model
        if model is not Framework:
            assert {row.tenant_id for row in page.context["cl"].result_list} <= {tenant_a.id}
    assert client.get(url(Finding, "changelist")).context["cl"].result_count > 0
    framework = Framework.objects.get(code="eu-ai-act")
    detail = client.get(url(Framework, "change", framework.pk))
    assert detail.status_code == 200
    assert "Human oversight" in detail.content.decode()


def test_computed_rows_are_read_only(client, tenant_a, scanned):
    login_verified(client, make_staff(role=MspRole.ADMIN))
    with tenant_scope(tenant_a.id):
        finding = Finding.objects.first()
    assert client.get(url(Finding, "add")).status_code == 403
    response = client.post(url(Finding, "change", finding.pk), {"status": "pass"})
    assert response.status_code == 403
    with tenant_scope(tenant_a.id):
        assert Finding.objects.get(pk=finding.pk).status == finding.status


def test_a_waiver_is_added_through_the_service_and_audited(client, tenant_a):
    login_verified(client, make_staff(tenant_a, role=MspRole.ENGINEER))
    expires = timezone.now() + dt.timedelta(days=10)
    response = client.post(
        url(Waiver, "add"),
        {
            "tenant": tenant_a.pk,
            "check_code": "deployment.runbook",
            "subject_type": "",
            "subject_id": "",
            "reason": "Runbooks are being rewritten.",
            "approved_by": "Head of Operations",
            "expires_at_0": expires.strftime("%Y-%m-%d"),
            "expires_at_1": expires.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    with tenant_scope(tenant_a.id):
        waiver = Waiver.objects.get()
    assert waiver.created_by is not None
    assert AuditEvent.objects.filter(
        tenant=tenant_a, object_type="compliance.Waiver", action="create"
    ).exists()
    refused = client.post(
        url(Waiver, "change", waiver.pk),
        {
            "check_code": "ai_system.no_prohibited_practice",
            "subject_type": "",
            "subject_id": "",
            "reason": "x",
            "approved_by": "y",
            "expires_at_0": expires.strftime("%Y-%m-%d"),
            "expires_at_1": expires.strftime("%H:%M:%S"),
        },
    )
    with tenant_scope(tenant_a.id):
        assert Waiver.objects.get().check_code == "deployment.runbook"
    assert refused.status_code == 200  # the form again, with the service's refusal on it
    assert "cannot be waived" in refused.content.decode()
