"""Recommendations in the MSP admin: scoped to the staff member's tenants, read-only rows, and
lifecycle actions through the audited services."""

from __future__ import annotations

import pytest
from django.urls import reverse

from operations.jobs.models import JobRun
from operations.optimisation.models import Recommendation
from tenants.models import AuditEvent, MspRole
from tenants.scoping import tenant_scope
from tests.factories import login_verified, make_staff
from tests.optimisation.test_api import make_recommendation

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:optimisation_recommendation_changelist")


def status_of(rec) -> str:
    with tenant_scope(rec.tenant_id):
        return Recommendation.objects.get(pk=rec.pk).status


def run_action(client, action: str, recs):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [r.pk for r in recs], "index": 0},
        follow=True,
    )


def test_the_list_shows_only_the_staff_members_tenants(client, tenant_a, tenant_b):
    own, foreign = make_recommendation(tenant_a), make_recommendation(tenant_b)
    login_verified(client, make_staff(tenant_a, role=MspRole.ENGINEER))
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert [r.pk for r in page.context["cl"].result_list] == [own.pk]
    change = reverse("admin:optimisation_recommendation_change", args=[foreign.pk])
    assert client.get(change).status_code in (302, 404)


def test_actions_go_through_the_lifecycle_and_report_refusals(client, tenant_a):
    fresh, done = make_recommendation(tenant_a, 1), make_recommendation(tenant_a, 2)
    login_verified(client, make_staff(tenant_a, role=MspRole.ENGINEER, username="eng"))
    run_action(client, "accept_selected", [done])
    run_action(client, "implement_selected", [done])
    page = run_action(client, "implement_selected", [fresh, done])
    messages = [str(m) for m in page.context["messages"]]
    assert any("Cannot implement a recommendation that is open" in m for m in messages)
    assert (status_of(fresh), status_of(done)) == ("open", "implemented")
    run_action(client, "dismiss_selected", [fresh])
    assert status_of(fresh) == "dismissed"
    with tenant_scope(tenant_a.id):
        labels = set(
            AuditEvent.objects.filter(object_type="optimisation.Recommendation").values_list(
                "actor_label", flat=True
            )
        )
    assert labels == {"eng"}


def test_analysts_cannot_act(client, tenant_a):
    rec = make_recommendation(tenant_a)
    login_verified(client, make_staff(tenant_a, role=MspRole.ANALYST))
    run_action(client, "accept_selected", [rec])
    assert status_of(rec) == "open"


def test_scan_now_queues_one_job_per_tenant(client, tenant_a, tenant_b):
    recs = [make_recommendation(tenant_a, 1), make_recommendation(tenant_a, 2)]
    recs.append(make_recommendation(tenant_b, 3))
    login_verified(client, make_staff(role=MspRole.ADMIN))
    run_action(client, "scan_tenants_now", recs)
    for tenant in (tenant_a, tenant_b):
        with tenant_scope(tenant.id):
            assert JobRun.objects.filter(kind="optimisation_scan").count() == 1


def test_the_change_page_shows_a_recommendation_read_only(client, tenant_a):
    rec = make_recommendation(tenant_a)
    login_verified(client, make_staff(tenant_a, role=MspRole.ENGINEER))
    page = client.get(reverse("admin:optimisation_recommendation_change", args=[rec.pk]))
    assert page.status_code == 200
    assert "node-1 is idle" in page.content.decode()
    assert client.get(reverse("admin:optimisation_recommendation_add")).status_code == 403
