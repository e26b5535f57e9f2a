"""The compliance API: the check catalogue and frameworks, findings with their filters and
waiver state, waivers (who may write, validation), scores; lists at a constant query count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from operations.compliance import services
from operations.compliance.models import Framework, Waiver
from tenants.scoping import tenant_scope
from tests.compliance.builders import good_dataset, good_deployment, good_system, high_system
from tests.conftest import Actor
from tests.factories import make_member, make_token

pytestmark = pytest.mark.django_db

OWNER = "ai_system.accountable_owner"
# token (+ its last-used stamp), tenant access, count, page; on PostgreSQL the scope adds a
# savepoint and two set_config calls.
QUERY_BUDGET = 9


def url(tenant, route, *parts) -> str:
    return "/".join([f"/api/v1/tenants/{tenant.slug}/compliance/{route}", *map(str, parts)]) + "/"


def future(days=30) -> str:
    return (timezone.now() + dt.timedelta(days=days)).isoformat()


# --- Catalogue ------------------------------------------------------------------------------------


def test_the_check_catalogue_is_readable_by_any_authenticated_caller(admin_b, viewer_a):
    assert APIClient().get("/api/v1/compliance/checks/").status_code == 401
    for caller in (admin_b, viewer_a):
        response = caller.client.get("/api/v1/compliance/checks/")
        assert response.status_code == 200
        body = response.json()
        assert body["count"] == len(body["results"]) >= 15
    prohibited = next(r for r in body["results"] if r["code"] == "ai_system.no_prohibited_practice")
    assert prohibited["severity"] == "critical"
    assert "eu-ai-act:art-5" in prohibited["controls"]
    assert (prohibited["waivable"], prohibited["opens_incident"]) == (False, True)
    only_eu = viewer_a.client.get("/api/v1/compliance/checks/", {"framework": "eu-ai-act"})
    assert all(
        any(c.startswith("eu-ai-act:") for c in row["controls"])
        for row in only_eu.json()["results"]
    )
    assert only_eu.json()["count"] < body["count"]


def test_an_ingest_only_token_cannot_read_the_catalogue(tenant_a):
    user = make_member(tenant_a, username="pusher")
    pusher = Actor(user, make_token(user, scopes=("ingest",)))
    assert pusher.client.get("/api/v1/compliance/checks/").status_code == 403


def test_frameworks_list_and_detail_with_controls_and_their_checks(viewer_a):
    response = viewer_a.client.get("/api/v1/compliance/frameworks/")
    assert response.status_code == 200
    rows = {row["code"]: row for row in response.json()["results"]}
    assert set(rows) == {"eu-ai-act", "iso-42001", "nist-ai-rmf"}
    assert rows["iso-42001"]["control_count"] == 38
    detail = viewer_a.client.get(f"/api/v1/compliance/frameworks/{rows['eu-ai-act']['id']}/")
    controls = {c["code"]: c for c in detail.json()["controls"]}
    assert "ai_system.human_oversight" in controls["art-14"]["checks"]
    assert controls["art-4"]["checks"] == []
    assert viewer_a.client.get("/api/v1/compliance/frameworks/987654/").status_code == 404
    assert viewer_a.client.post("/api/v1/compliance/frameworks/", {}).status_code in (403, 405)


# --- Findings -------------------------------------------------------------------------------------


@pytest.fixture
def scanned(tenant_a):
    ownerless = good_system(tenant_a, business_owner="", name="Ownerless")
    good_system(tenant_a, name="Owned")
    high_system(tenant_a, technical_documentation_url="", name="Undocumented")
    good_deployment(tenant_a, monitoring_enabled=False)
    good_dataset(tenant_a, personal_data=True, residency_country="US", name="US personal")
    services.compliance_run_for_tenant(tenant=tenant_a)
    return ownerless


def results(caller, tenant, **params) -> list[dict]:
    response = caller.client.get(url(tenant, "findings"), {"page_size": 500, **params})
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_findings_carry_check_controls_subject_and_dates(viewer_a, tenant_a, scanned):
    rows = results(viewer_a, tenant_a, check=OWNER, status="fail")
    assert [row["subject_label"] for row in rows] == ["Ownerless"]
    row = rows[0]
    assert row["subject_type"] == "ai_system"
    assert row["subject_id"] == scanned.pk
    assert "iso-42001:A.3.2" in row["controls"]
    assert row["check_title"]
    assert row["first_seen"]
    assert row["last_seen"]
    assert row["resolved_at"] is None
    assert (row["status"], row["effective_status"], row["waived"]) == ("fail", "fail", False)


def test_findings_filters(viewer_a, tenant_a, scanned):
    fails = results(viewer_a, tenant_a, status="fail")
    assert {r["check"] for r in fails} >= {
        OWNER,
        "ai_system.technical_documentation",
        "deployment.monitoring",
        "dataset.personal_data_residency",
    }
    assert all(r["status"] == "fail" for r in fails)
    eu = results(viewer_a, tenant_a, framework="eu-ai-act")
    assert eu
    assert all(any(c.startswith("eu-ai-act:") for c in r["controls"]) for r in eu)
    assert OWNER in {r["check"] for r in eu}  # mapped to art-26
    assert {r["check"] for r in results(viewer_a, tenant_a, control="eu-ai-act:art-72")} == {
        "deployment.monitoring"
    }
    high = results(viewer_a, tenant_a, severity="high", status="fail")
    assert high
    assert all(r["severity"] == "high" for r in high)
    datasets = results(viewer_a, tenant_a, subject_type="dataset")
    assert datasets
    assert all(r["subject_type"] == "dataset" for r in datasets)
    subject = results(viewer_a, tenant_a, subject=scanned.pk, subject_type="ai_system")
    assert {r["subject_id"] for r in subject} == {scanned.pk}
    undocumented = next(
        r for r in results(viewer_a, tenant_a) if r["subject_label"] == "Undocumented"
    )
    from operations.inventory import services as inventory_services
    from operations.inventory.models import AISystem

    with tenant_scope(tenant_a.id):
        system = AISystem.objects.get(pk=undocumented["subject_id"])
        inventory_services.ai_system_update(tenant=tenant_a, ai_system=system, risk_tier="minimal")
    services.compliance_run_for_tenant(tenant=tenant_a)
    na = results(viewer_a, tenant_a, status="not_applicable")
    assert na
    assert all(r["status"] == "not_applicable" for r in na)
    bad = viewer_a.client.get(url(tenant_a, "findings"), {"status": "broken"})
    assert bad.status_code == 400
    assert "status" in bad.json()["error"]["fields"]


def test_a_waiver_shows_at_once_and_an_expired_one_stops_applying(admin_a, tenant_a, scanned):
    created = admin_a.client.post(
        url(tenant_a, "waivers"),
        {
            "check": OWNER,
            "subject_type": "ai_system",
            "subject_id": scanned.pk,
            "reason": "Owner being recruited.",
            "approved_by": "CISO",
            "expires_at": future(),
        },
    )
    assert created.status_code == 201, created.content
    assert created.json()["active"] is True
    assert created.json()["created_by"] == "acme-admin"
    waived = results(admin_a, tenant_a, status="waived")
    assert [(r["check"], r["subject_id"], r["effective_status"]) for r in waived] == [
        (OWNER, scanned.pk, "waived")
    ]
    assert OWNER not in {r["check"] for r in results(admin_a, tenant_a, status="fail")}

    with tenant_scope(tenant_a.id):
        Waiver.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert results(admin_a, tenant_a, status="waived") == []
    assert OWNER in {r["check"] for r in results(admin_a, tenant_a, status="fail")}
    listed = admin_a.client.get(url(tenant_a, "waivers"), {"active": "false"}).json()
    assert [row["active"] for row in listed["results"]] == [False]


def test_lists_keep_a_constant_query_count(admin_a, tenant_a, django_assert_max_num_queries):
    good_system(tenant_a, business_owner="")
    services.compliance_run_for_tenant(tenant=tenant_a)
    with tenant_scope(tenant_a.id):
        services.waiver_create(
            tenant=tenant_a,
            check_code=OWNER,
            reason="r",
            approved_by="CISO",
            expires_at=timezone.now() + dt.timedelta(days=3),
            created_by=admin_a.user,
        )
    routes = ["findings", "waivers", "scores", "scores/latest"]
    for route in routes:
        with django_assert_max_num_queries(QUERY_BUDGET):
            assert admin_a.client.get(url(tenant_a, route)).status_code == 200
    for number in range(12):
        good_system(tenant_a, business_owner="", name=f"Many {number}")
        good_deployment(tenant_a, monitoring_enabled=False)
        with tenant_scope(tenant_a.id):
            services.waiver_create(
                tenant=tenant_a,
                check_code="deployment.monitoring",
                reason="r",
                approved_by="CISO",
                expires_at=timezone.now() + dt.timedelta(days=3),
                created_by=admin_a.user,
            )
    services.compliance_run_for_tenant(tenant=tenant_a)
    for route in routes:
        with django_assert_max_num_queries(QUERY_BUDGET):
            response = admin_a.client.get(url(tenant_a, route), {"page_size": 500})
        assert response.status_code == 200
    findings = admin_a.client.get(url(tenant_a, "findings"), {"page_size": 500}).json()
    assert findings["count"] > 100


# --- Waivers --------------------------------------------------------------------------------------


def test_only_admins_and_staff_write_waivers(member_a, viewer_a, analyst_a, engineer_a, tenant_a):
    payload = {"check": OWNER, "reason": "Accepted.", "approved_by": "CISO", "expires_at": future()}
    for caller in (member_a, viewer_a, analyst_a):
        response = caller.client.post(url(tenant_a, "waivers"), payload)
        assert response.status_code == 403, caller.user.username
        assert response.json()["error"]["status"] == 403
    with tenant_scope(tenant_a.id):
        assert not Waiver.objects.exists()
    assert engineer_a.client.post(url(tenant_a, "waivers"), payload).status_code == 201
    assert viewer_a.client.get(url(tenant_a, "waivers")).json()["count"] == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"check": "no.such.check"}, "check"),
        ({"check": "ai_system.no_prohibited_practice"}, "check"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "next week"}, "expires_at"),
        ({"subject_type": "dataset", "subject_id": 987654}, "subject_type"),
        ({"subject_type": "ai_system", "subject_id": 987654}, "subject_id"),
        ({"reason": ""}, "reason"),
        ({"approved_by": ""}, "approved_by"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_waivers_get_the_one_error_format_and_write_nothing(admin_a, tenant_a, change, field):
    payload = {"check": OWNER, "reason": "Accepted.", "approved_by": "CISO", "expires_at": future()}
    response = admin_a.client.post(url(tenant_a, "waivers"), {**payload, **change})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["status"], error["code"]) == (400, "invalid")
    assert field in error["fields"]
    with tenant_scope(tenant_a.id):
        assert not Waiver.objects.exists()


def test_a_waiver_is_updated_and_deleted(admin_a, tenant_a):
    system = good_system(tenant_a)
    created = admin_a.client.post(
        url(tenant_a, "waivers"),
        {
            "check": OWNER,
            "subject_type": "ai_system",
            "subject_id": system.pk,
            "reason": "Accepted.",
            "approved_by": "CISO",
            "expires_at": future(),
        },
    ).json()
    patched = admin_a.client.patch(
        url(tenant_a, "waivers", created["id"]), {"expires_at": future(90), "reason": "Longer"}
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["reason"] == "Longer"
    refused = admin_a.client.patch(
        url(tenant_a, "waivers", created["id"]), {"check": "ai_system.no_prohibited_practice"}
    )
    assert refused.status_code == 400
    assert admin_a.client.delete(url(tenant_a, "waivers", created["id"])).status_code == 204
    with tenant_scope(tenant_a.id):
        assert not Waiver.objects.exists()


# --- Scores ---------------------------------------------------------------------------------------


def test_scores_history_and_latest(viewer_a, tenant_a):
    good_system(tenant_a, business_owner="")
    services.compliance_run_for_tenant(tenant=tenant_a)
    services.compliance_run_for_tenant(tenant=tenant_a)
    history = viewer_a.client.get(url(tenant_a, "scores"), {"framework": "iso-42001"}).json()
    assert history["count"] == 2
    assert all(row["framework"] == "iso-42001" for row in history["results"])
    latest = viewer_a.client.get(url(tenant_a, "scores", "latest")).json()
    assert [row["framework"] for row in latest] == ["eu-ai-act", "iso-42001", "nist-ai-rmf"]
    newest_iso = next(row for row in latest if row["framework"] == "iso-42001")
    assert newest_iso["id"] == history["results"][0]["id"]
    assert newest_iso["score"] is not None
    assert "A.3.2" in newest_iso["failed_controls"]
    assert Framework.objects.get(code="iso-42001").version == newest_iso["framework_version"]
