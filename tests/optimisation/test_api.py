"""The recommendations API: list, filters, ordering, detail, the lifecycle actions, the summary,
the one error format, query budgets, and the isolation proofs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from operations.optimisation.models import Recommendation
from tenants.models import TenantRole
from tenants.scoping import tenant_scope
from tests.conftest import Actor
from tests.factories import make_member, make_token
from tests.inventory.estate import make_gpu_node
from tests.isolation import TenantIsolationTests
from tests.optimisation.helpers import feed_gpu, scan

pytestmark = pytest.mark.django_db


def make_recommendation(tenant, n: int = 1, **fields) -> Recommendation:
    values = {
        "kind": "idle_gpu",
        "subject_type": "compute",
        "subject_id": 1000 + n,
        "subject_key": f"compute:{1000 + n}",
        "subject_label": f"node-{n}",
        "title": f"node-{n} is idle",
        "evidence": {"utilisation_mean": 1.5},
        "estimated_monthly_saving": Decimal(100 * n),
    }
    with tenant_scope(tenant.id):
        return Recommendation.objects.create(tenant=tenant, **{**values, **fields})


def url(tenant, pk=None, action=None) -> str:
    base = f"/api/v1/tenants/{tenant.slug}/recommendations/"
    if pk is not None:
        base += f"{pk}/"
    if action:
        base += f"{action}/"
    return base


class TestRecommendationIsolation(TenantIsolationTests):
    resource = "recommendations"
    model = Recommendation
    can_create = can_update = can_delete = False
    csv_list = True
    detail_actions = ("accept", "implement", "dismiss")

    def make_object(self, tenant):
        return make_recommendation(tenant)

    def test_foreign_dismiss_with_a_reason_is_404_and_changes_nothing(
        self, caller, objects, tenant_a
    ):
        _own, foreign = objects
        before = self.snapshot(foreign)
        response = caller.client.post(
            url(tenant_a, foreign.pk, "dismiss"), {"reason": "x"}, format="json"
        )
        assert response.status_code == 404
        assert response.content == self.not_found_body(caller, tenant_a)
        assert self.snapshot(foreign) == before

    def test_summary_counts_only_the_url_tenant(self, caller, objects, tenant_a, tenant_b):
        make_recommendation(tenant_b, n=7)
        body = caller.client.get(url(tenant_a) + "summary/").json()
        assert body["open_monthly_saving"] == {"USD": "100.00"}
        assert caller.client.get(url(tenant_b) + "summary/").status_code == 404


# --- Reading ------------------------------------------------------------------------------------


def test_list_is_ordered_by_saving_and_filters(admin_a, tenant_a):
    make_recommendation(tenant_a, 1)
    make_recommendation(tenant_a, 3, kind="right_size")
    make_recommendation(tenant_a, 2, status="dismissed", dismissed_reason="no")
    rows = admin_a.client.get(url(tenant_a)).json()["results"]
    assert [row["estimated_monthly_saving"] for row in rows] == ["300.00", "200.00", "100.00"]

    def titles(**params):
        return [row["title"] for row in admin_a.client.get(url(tenant_a), params).json()["results"]]

    assert titles(kind="right_size") == ["node-3 is idle"]
    assert titles(status="open", ordering="estimated_monthly_saving") == [
        "node-1 is idle",
        "node-3 is idle",
    ]
    assert titles(subject="compute:1002") == ["node-2 is idle"]
    assert titles(min_saving=150, status=["open", "dismissed"]) == [
        "node-3 is idle",
        "node-2 is idle",
    ]


def test_a_bad_filter_is_the_one_error_format(admin_a, tenant_a):
    response = admin_a.client.get(url(tenant_a), {"kind": "free_money"})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["kind"]


def test_detail_shows_evidence_and_allowed_actions(admin_a, tenant_a):
    rec = make_recommendation(tenant_a)
    body = admin_a.client.get(url(tenant_a, rec.pk)).json()
    assert body["evidence"] == {"utilisation_mean": 1.5}
    assert body["subject"] == "compute:1001"
    assert body["allowed_actions"] == ["accept", "dismiss"]
    assert "tenant" not in body


# Token, tenant access, count, page; on PostgreSQL also the scope's savepoint and settings.
QUERY_BUDGET = 9


def test_the_list_costs_a_constant_number_of_queries(
    admin_a, tenant_a, django_assert_max_num_queries
):
    admin_a.client.get(url(tenant_a))  # the token's first use records "last used" once
    counts = []
    made = 0
    for rows in (1, 30):
        while made < rows:
            made += 1
            make_recommendation(tenant_a, made)
        with django_assert_max_num_queries(QUERY_BUDGET) as captured:
            response = admin_a.client.get(url(tenant_a), {"page_size": 100})
        assert len(response.json()["results"]) == rows
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]


def test_the_summary_totals_open_savings_by_kind(admin_a, tenant_a, django_assert_max_num_queries):
    make_recommendation(tenant_a, 1)
    make_recommendation(tenant_a, 2)
    make_recommendation(tenant_a, 5, kind="retired_capacity", currency="EUR")
    make_recommendation(tenant_a, 9, status="dismissed", dismissed_reason="no")
    make_recommendation(tenant_a, 11, kind="capacity_forecast", estimated_monthly_saving=0)
    with django_assert_max_num_queries(QUERY_BUDGET):
        body = admin_a.client.get(url(tenant_a) + "summary/").json()
    assert body["open_monthly_saving"] == {"USD": "300.00", "EUR": "500.00"}
    kinds = {row["kind"]: row for row in body["by_kind"]}
    assert kinds["idle_gpu"]["open"] == 2
    assert kinds["idle_gpu"]["monthly_saving"] == {"USD": "300.00"}
    assert kinds["cost_anomaly"] == {
        "kind": "cost_anomaly",
        "label": "Cost anomaly",
        "open": 0,
        "monthly_saving": {},
    }
    # A forecast saves nothing: counted, but no "0.00" line.
    assert kinds["capacity_forecast"]["open"] == 1
    assert kinds["capacity_forecast"]["monthly_saving"] == {}
    assert body["by_status"]["dismissed"] == 1
    assert body["by_status"]["open"] == 4


# --- The lifecycle ------------------------------------------------------------------------------


def test_accept_implement_through_the_api(admin_a, tenant_a):
    rec = make_recommendation(tenant_a)
    accepted = admin_a.client.post(url(tenant_a, rec.pk, "accept"), {}, format="json")
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["status"] == "accepted"
    assert accepted.json()["accepted_by_label"] == "acme-admin"
    implemented = admin_a.client.post(url(tenant_a, rec.pk, "implement"), format="json")
    assert implemented.json()["status"] == "implemented"
    assert implemented.json()["allowed_actions"] == []


def test_a_refused_transition_is_409_and_changes_nothing(admin_a, tenant_a):
    rec = make_recommendation(tenant_a)
    response = admin_a.client.post(url(tenant_a, rec.pk, "implement"), {}, format="json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert error["message"].startswith("Cannot implement a recommendation that is open")
    with tenant_scope(tenant_a.id):
        assert Recommendation.objects.get(pk=rec.pk).status == "open"


def test_dismiss_needs_a_reason_and_refuses_unknown_fields(admin_a, tenant_a):
    rec = make_recommendation(tenant_a)
    missing = admin_a.client.post(url(tenant_a, rec.pk, "dismiss"), {}, format="json")
    assert missing.status_code == 400
    assert list(missing.json()["error"]["fields"]) == ["reason"]
    typo = admin_a.client.post(
        url(tenant_a, rec.pk, "dismiss"), {"reason": "ok", "status": "open"}, format="json"
    )
    assert typo.status_code == 400
    assert list(typo.json()["error"]["fields"]) == ["status"]
    with tenant_scope(tenant_a.id):
        assert Recommendation.objects.get(pk=rec.pk).status == "open"
    done = admin_a.client.post(
        url(tenant_a, rec.pk, "dismiss"), {"reason": "Reserved for DR"}, format="json"
    )
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["dismissed_reason"]) == (
        "dismissed",
        "Reserved for DR",
    )


def test_viewers_read_but_cannot_act(tenant_a):
    viewer = make_member(tenant_a, TenantRole.VIEWER, username="acme-viewer")
    caller = Actor(viewer, make_token(viewer))
    rec = make_recommendation(tenant_a)
    assert caller.client.get(url(tenant_a, rec.pk)).status_code == 200
    response = caller.client.post(url(tenant_a, rec.pk, "accept"), {}, format="json")
    assert response.status_code == 403
    with tenant_scope(tenant_a.id):
        assert Recommendation.objects.get(pk=rec.pk).status == "open"


def test_a_scan_shows_up_in_the_api(admin_a, tenant_a):
    node = make_gpu_node(tenant_a, hostname="acme-gpu-idle-01", hourly_cost="7.3200")
    feed_gpu(tenant_a, node, utilisation=2)
    scan(tenant_a)
    [row] = admin_a.client.get(url(tenant_a), {"kind": "idle_gpu"}).json()["results"]
    assert row["subject_label"] == "acme-gpu-idle-01"
    assert row["estimated_monthly_saving"] == "5343.60"
