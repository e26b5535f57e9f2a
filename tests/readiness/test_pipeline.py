"""The MSP's pipeline: scoping (msp_admin all, staff their assigned tenants, a bound token its
tenant, clients nothing), rows and fleet figures, filters, a constant number of queries, and the
staff page in the admin."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from operations.inventory.models import AISystem
from operations.readiness.pipeline import _median_days_to_production, readiness_pipeline
from tenants.models import MspRole, Tenant
from tenants.scoping import tenant_scope
from tests.conftest import Actor
from tests.factories import TenantFactory, login_verified, make_staff, make_token
from tests.incidents.factories import make_incident
from tests.inventory import estate
from tests.readiness.gate_builders import grant_override, ready_pilot

pytestmark = pytest.mark.django_db

URL = "/api/v1/readiness/pipeline"


def pilot_since(tenant, system, days: int) -> None:
    with tenant_scope(tenant.id):
        AISystem.objects.filter(pk=system.pk).update(
            stage_changed_at=timezone.now() - dt.timedelta(days=days)
        )


@pytest.fixture
def fleet(tenant_a, tenant_b):
    """Acme: a ready pilot, a pilot blocked by a missing FRIA for 120 days, one in production.
    Borealis: a pilot blocked by an open SEV2, and one overridden."""
    ready = ready_pilot(tenant_a, name="Invoice matching")
    no_fria = ready_pilot(tenant_a, name="Credit scoring", risk_tier="high")
    pilot_since(tenant_a, no_fria, 120)
    live = estate.make_ai_system(tenant_a, name="Chat assistant", stage="production")
    incident_bound = ready_pilot(tenant_b, name="Fraud alerts")
    make_incident(tenant_b, severity="SEV2", ai_systems=[incident_bound])
    overridden = ready_pilot(tenant_b, name="Churn model", risk_tier="unclassified")
    grant_override(tenant_b, overridden, reason="Internal tool; classified next sprint.")
    return {
        "ready": ready,
        "no_fria": no_fria,
        "live": live,
        "incident": incident_bound,
        "overridden": overridden,
    }


def names(body) -> list[str]:
    return [row["ai_system"]["name"] for row in body["results"]]


def test_an_msp_admin_sees_every_tenant_by_stage_with_gates(msp_admin, fleet):
    response = msp_admin.client.get(URL)
    assert response.status_code == 200, response.content
    body = response.json()
    # Pilots first, the longest in pilot first, then by tenant and name; then production.
    assert names(body) == [
        "Credit scoring",
        "Invoice matching",
        "Churn model",
        "Fraud alerts",
        "Chat assistant",
    ]
    rows = {row["ai_system"]["name"]: row for row in body["results"]}
    assert rows["Credit scoring"]["gate_status"] == "blocked"
    assert rows["Credit scoring"]["blocking"] == [
        {"key": "fria_completed", "title": "Fundamental-rights impact assessment done"}
    ]
    assert rows["Credit scoring"]["days_in_pilot"] == 120
    assert rows["Credit scoring"]["stalled"] is True
    assert rows["Fraud alerts"]["blocking"][0]["key"] == "no_major_incident"
    assert rows["Churn model"]["gate_status"] == "overridden"
    assert rows["Churn model"]["override"]["reason"] == "Internal tool; classified next sprint."
    assert rows["Invoice matching"]["gate_status"] == "ready"
    assert rows["Chat assistant"]["days_in_pilot"] is None

    figures = body["figures"]
    assert figures["systems"] == 5
    assert figures["by_stage"] == {"proposed": 0, "pilot": 4, "production": 1, "retired": 0}
    assert figures["pilots_blocked"] == 2
    assert figures["pilots_stalled"] == 1
    # One blocker each: ties go to the criterion listed first.
    assert figures["most_common_blocker"] == {
        "key": "fria_completed",
        "title": "Fundamental-rights impact assessment done",
        "pilots": 1,
    }
    assert figures["median_days_pilot_to_production"] is None  # nothing promoted yet
    assert {row["slug"] for row in body["tenants"]} == {"acme", "borealis"}


def test_an_engineer_sees_only_assigned_tenants(engineer_a, fleet):
    body = engineer_a.client.get(URL).json()
    assert {row["tenant"]["slug"] for row in body["results"]} == {"acme"}
    assert names(body) == ["Credit scoring", "Invoice matching", "Chat assistant"]
    assert body["figures"]["systems"] == 3
    assert [row["slug"] for row in body["tenants"]] == ["acme"]


def test_a_bound_token_sees_its_tenant_only(msp_admin, tenant_b, fleet):
    bound = Actor(msp_admin.user, make_token(msp_admin.user, tenant=tenant_b))
    body = bound.client.get(URL).json()
    assert {row["tenant"]["slug"] for row in body["results"]} == {"borealis"}


def test_client_users_are_refused(admin_a, fleet):
    response = admin_a.client.get(URL)
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "The readiness pipeline is for MSP staff."


def test_staff_with_no_assigned_tenant_see_nothing(fleet):
    lonely = make_staff(role=MspRole.ENGINEER, username="lonely")
    body = Actor(lonely, make_token(lonely)).client.get(URL).json()
    assert body["results"] == []
    assert body["figures"]["systems"] == 0


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"stage": "production"}, ["Chat assistant"]),
        ({"gate_status": "blocked", "stage": "pilot"}, ["Credit scoring", "Fraud alerts"]),
        ({"gate_status": "overridden"}, ["Churn model"]),
        ({"tenant": "borealis"}, ["Churn model", "Fraud alerts"]),
        ({"stalled": "true"}, ["Credit scoring"]),
        ({"tenant": "no-such"}, []),
    ],
)
def test_filters(msp_admin, fleet, query, expected):
    body = msp_admin.client.get(URL, query).json()
    assert names(body) == expected
    assert body["figures"]["systems"] == 5  # the figures stay fleet-wide


def test_a_bad_filter_is_a_400(msp_admin, fleet):
    response = msp_admin.client.get(URL, {"stage": "dancing"})
    assert response.status_code == 400
    assert "stage" in response.json()["error"]["fields"]


def test_pages(msp_admin, fleet):
    body = msp_admin.client.get(URL, {"page_size": 2, "page": 2}).json()
    assert body["count"] == 5
    assert names(body) == ["Churn model", "Fraud alerts"]


def test_the_median_days_from_pilot_to_production_reads_stage_changes():
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    day = dt.timedelta(days=1)
    changes = [
        ("1", now - 300 * day, None, "pilot"),
        ("2", now - 100 * day, "proposed", "pilot"),
        ("3", now - 50 * day, None, "production"),  # never a pilot: not counted
        ("1", now - 200 * day, "pilot", "production"),  # 100 days
        ("2", now - 90 * day, "pilot", "production"),  # 10 days
        ("4", now - 800 * day, None, "pilot"),
        ("4", now - 700 * day, "pilot", "production"),  # over a year ago: not counted
        ("5", now - 40 * day, None, "pilot"),
        ("5", now - 10 * day, "pilot", "production"),  # 30 days
    ]
    assert _median_days_to_production(changes, now=now) == (30.0, 3)
    assert _median_days_to_production([], now=now) == (None, 0)


def test_a_promotion_counts_in_the_figures(msp_admin, tenant_a, fleet, admin_a):
    moved = admin_a.client.post(
        f"/api/v1/tenants/acme/ai-systems/{fleet['ready'].pk}/transition", {"stage": "production"}
    )
    assert moved.status_code == 200
    figures = msp_admin.client.get(URL).json()["figures"]
    assert figures["median_days_pilot_to_production"] == 0.0
    assert figures["promotions_counted"] == 1


def _estate(tenant, count: int) -> None:
    for _ in range(count):
        system = ready_pilot(tenant)
        make_incident(tenant, severity="SEV1", ai_systems=[system])


def _queries(user) -> int:
    with CaptureQueriesContext(connection) as captured:
        from tenants.selectors import tenants_visible_to

        pipeline = readiness_pipeline(tenants=tenants_visible_to(user))
    assert pipeline.rows
    return len(captured.captured_queries)


def test_the_query_count_does_not_grow_with_the_systems(tenant_a, tenant_b):
    admin = make_staff(role=MspRole.ADMIN)
    _estate(tenant_a, 1)
    few = _queries(admin)
    _estate(tenant_a, 4)
    _estate(tenant_b, 3)
    third = TenantFactory(name="Cobalt Care", slug="cobalt")
    _estate(third, 2)
    assert Tenant.objects.count() == 3
    assert _queries(admin) == few


def test_the_staff_page_shows_the_figures_and_the_table(client, tenant_a, tenant_b, fleet):
    engineer = make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-page")
    login_verified(client, engineer)
    response = client.get(reverse("admin:readiness_pipeline"), {"stage": "pilot"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Pilots stalled over 90 days" in page
    assert "Credit scoring" in page
    assert "Fundamental-rights impact assessment done" in page
    assert "Fraud alerts" not in page  # borealis is not assigned
    assert "Chat assistant" not in page  # filtered to pilots
    client.logout()
    assert client.get(reverse("admin:readiness_pipeline")).status_code == 302


def test_the_override_admin_lists_overrides_read_only(client, tenant_b, fleet):
    admin = make_staff(role=MspRole.ADMIN, username="msp-admin-page")
    login_verified(client, admin)
    response = client.get(reverse("admin:readiness_gateoverride_changelist"))
    assert response.status_code == 200
    assert "Churn model" in response.content.decode()
    assert reverse("admin:readiness_pipeline") in response.content.decode()
    assert client.get(reverse("admin:readiness_gateoverride_add")).status_code == 403
