"""The pilot → production gates on the readiness page: each pilot's criteria with pass or fail
and their detail, an override shown with its reason and who granted it; only this tenant's
pilots, and a query count that does not grow with them."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tenants.models import TenantRole
from tests.factories import make_member
from tests.inventory import estate
from tests.readiness import gate_builders

pytestmark = pytest.mark.django_db


def overview(client, tenant):
    return client.get(reverse("portal_readiness:overview", args=[tenant.slug]))


def section_of(response, system) -> str:
    text = response.content.decode()
    match = re.search(rf'<section[^>]*id="pilot-{system.pk}".*?</section>', text, re.S)
    assert match, f"no gate checklist for {system.name}"
    return re.sub(r"\s+", " ", match.group(0))


@pytest.fixture
def viewer(client, tenant_a):
    client.force_login(make_member(tenant_a, TenantRole.VIEWER, username="acme-gates-viewer"))
    return client


def test_each_pilot_shows_its_gates_with_pass_fail_and_detail(
    viewer, tenant_a, tenant_b, framework
):
    ready = gate_builders.ready_pilot(tenant_a, name="Claims triage")
    ownerless = gate_builders.ready_pilot(tenant_a, name="Churn model", business_owner="")
    estate.make_ai_system(tenant_a, name="Fraud scorer in production", stage="production")
    gate_builders.ready_pilot(tenant_b, name="Borealis secret pilot")

    response = overview(viewer, tenant_a)
    assert response.status_code == 200
    text = response.content.decode()
    shown = {row["system"].name for row in response.context["pilots"]}
    assert shown == {"Claims triage", "Churn model"}
    assert "Borealis secret pilot" not in text
    assert "Fraud scorer in production" not in text

    passing = section_of(response, ready)
    assert "Ready for production" in passing
    assert "✗ Fail" not in passing
    failing = section_of(response, ownerless)
    assert "Blocked" in failing
    report = gate_builders.report_of(tenant_a, ownerless)
    assert "accountable_owner" in [row["key"] for row in report.failing]
    for criterion in report.criteria:
        assert criterion["title"] in failing
    failed = next(row for row in report.criteria if not row["passed"])
    assert failed["detail"][:40] in failing


def test_an_override_is_shown_with_its_reason_and_who_granted_it(viewer, tenant_a, framework):
    blocked = gate_builders.ready_pilot(tenant_a, name="Churn model", business_owner="")
    override = gate_builders.grant_override(
        tenant_a, blocked, reason="Risk committee accepted it for the Q1 launch."
    )
    section = section_of(overview(viewer, tenant_a), blocked)
    assert "Overridden" in section
    assert "Risk committee accepted it for the Q1 launch." in section
    granter = override.granted_by
    assert (granter.get_full_name() or granter.username) in section


def test_the_gates_run_the_same_queries_for_one_and_many_pilots(viewer, tenant_a, framework):
    gate_builders.ready_pilot(tenant_a, name="Pilot 0")
    with CaptureQueriesContext(connection) as one:
        assert overview(viewer, tenant_a).status_code == 200
    for index in range(1, 4):
        gate_builders.ready_pilot(tenant_a, name=f"Pilot {index}", business_owner="")
    with CaptureQueriesContext(connection) as many:
        response = overview(viewer, tenant_a)
    assert len(response.context["pilots"]) == 4
    assert len(many) == len(one)


def test_without_pilots_the_page_says_what_the_gates_are_for(viewer, tenant_a, framework):
    estate.make_ai_system(tenant_a, name="Fraud scorer in production", stage="production")
    response = overview(viewer, tenant_a)
    assert response.context["pilots"] == []
    assert "No AI system is in pilot." in response.content.decode()
