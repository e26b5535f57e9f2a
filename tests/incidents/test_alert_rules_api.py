"""The alert rule API: CRUD with validation and one error format, who may write, overrides of
MSP-wide defaults, the rules in force, evaluate-now, the defaults list, and query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from operations.incidents.models import AlertRule
from tenants.models import AuditEvent
from tenants.scoping import tenant_scope
from tests.incidents.alerting import alert_incidents, feed, make_default, make_rule, rule_fields
from tests.inventory.estate import make_gpu_node

pytestmark = pytest.mark.django_db


def url(tenant, suffix: str = "") -> str:
    return f"/api/v1/tenants/{tenant.slug}/alert-rules/{suffix}"


def rule_ids(tenant) -> set[int]:
    with tenant_scope(tenant.id):
        return set(AlertRule.objects.values_list("pk", flat=True))


def test_a_tenant_admin_creates_reads_changes_and_deletes_a_rule(admin_a, tenant_a):
    created = admin_a.client.post(url(tenant_a), rule_fields(resource_pattern="*-gpu-*"))
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["metric"] == "gpu_utilization"
    assert body["resource_pattern"] == "*-gpu-*"
    assert body["dedupe_prefix"] == f"alert:r{body['id']}"
    assert body["default_rule"] is None

    detail = admin_a.client.get(url(tenant_a, f"{body['id']}/"))
    assert detail.json() == body

    changed = admin_a.client.patch(url(tenant_a, f"{body['id']}/"), {"threshold": 95})
    assert changed.status_code == 200, changed.content
    assert changed.json()["threshold"] == 95.0

    assert admin_a.client.delete(url(tenant_a, f"{body['id']}/")).status_code == 204
    assert rule_ids(tenant_a) == set()
    actions = list(
        AuditEvent.objects.filter(object_type__icontains="alert")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["create", "update", "delete"]


def test_members_read_but_do_not_write_rules(member_a, viewer_a, tenant_a):
    make_rule(tenant_a)
    for actor in (member_a, viewer_a):
        assert actor.client.get(url(tenant_a)).json()["count"] == 1
        response = actor.client.post(url(tenant_a), rule_fields(name="Mine"))
        assert response.status_code == 403
        assert actor.client.post(url(tenant_a, "evaluate"), {}).status_code == 403
    assert len(rule_ids(tenant_a)) == 1


def test_an_engineer_assigned_elsewhere_cannot_reach_the_tenant(engineer_b, tenant_a):
    make_rule(tenant_a)
    assert engineer_b.client.get(url(tenant_a)).status_code == 404


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"metric": "gpu_fun"}, "metric"),
        ({"metric": "error_rate"}, "metric"),  # a deployment metric on compute
        ({"threshold": 150}, "threshold"),
        ({"threshold": "lots"}, "threshold"),
        ({"window_minutes": 0}, "window_minutes"),
        ({"window_minutes": 1441}, "window_minutes"),
        ({"condition": "sideways"}, "condition"),
        ({"severity": "SEV0"}, "severity"),
        ({"environment": "production"}, "environment"),
        ({"name": ""}, "name"),
        ({"colour": "red"}, "colour"),
        ({"default_rule": 987654}, "default_rule"),
    ],
)
def test_bad_input_gets_the_one_error_format_and_writes_nothing(admin_a, tenant_a, changes, field):
    before = AuditEvent.objects.count()
    response = admin_a.client.post(url(tenant_a), rule_fields(**changes))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in error["fields"], error
    assert rule_ids(tenant_a) == set()
    assert AuditEvent.objects.count() == before


def test_a_non_finite_threshold_is_refused(admin_a, tenant_a):
    response = admin_a.client.post(
        url(tenant_a),
        data='{"name": "x", "metric": "gpu_utilization", "condition": "above", '
        '"threshold": Infinity}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "error" in response.json()
    assert rule_ids(tenant_a) == set()


def test_a_bad_change_is_refused_and_keeps_the_rule(admin_a, tenant_a):
    rule = make_rule(tenant_a)
    response = admin_a.client.patch(
        url(tenant_a, f"{rule.pk}/"), {"target": "deployment"}
    )  # gpu_utilization is not a deployment metric
    assert response.status_code == 400
    assert "metric" in response.json()["error"]["fields"]
    with tenant_scope(tenant_a.id):
        assert AlertRule.objects.get(pk=rule.pk).target == "compute"


def test_overriding_and_disabling_a_default(admin_a, tenant_a):
    saturated = make_default()
    idle = make_default(name="GPU idle", condition="below", threshold=5, window_minutes=60)

    in_force = admin_a.client.get(url(tenant_a, "in-force")).json()["results"]
    assert [(r["source"], r["id"]) for r in in_force] == [
        ("default", idle.pk),
        ("default", saturated.pk),
    ]

    off = admin_a.client.post(url(tenant_a), {"default_rule": idle.pk, "enabled": False})
    assert off.status_code == 201, off.content
    assert off.json()["name"] == "GPU idle"  # copied from the default
    hotter = admin_a.client.post(url(tenant_a), {"default_rule": saturated.pk, "threshold": 99})
    assert hotter.status_code == 201, hotter.content
    assert hotter.json()["dedupe_prefix"] == f"alert:d{saturated.pk}"

    in_force = admin_a.client.get(url(tenant_a, "in-force")).json()["results"]
    assert [(r["source"], r["id"], r["threshold"]) for r in in_force] == [
        ("tenant", hotter.json()["id"], 99.0)
    ]
    # One override per default.
    again = admin_a.client.post(url(tenant_a), {"default_rule": saturated.pk})
    assert again.status_code == 400
    # An override stays attached to its default.
    moved = admin_a.client.patch(
        url(tenant_a, f"{hotter.json()['id']}/"), {"default_rule": idle.pk}
    )
    assert moved.status_code == 400
    assert "default_rule" in moved.json()["error"]["fields"]


def test_the_defaults_are_listed_for_everyone_read_only(admin_a, msp_admin):
    default = make_default()
    for actor in (admin_a, msp_admin):
        response = actor.client.get("/api/v1/alert-rules/defaults")
        assert response.status_code == 200
        assert [row["id"] for row in response.json()["results"]] == [default.pk]
    assert msp_admin.client.post("/api/v1/alert-rules/defaults", {}).status_code == 405


def test_evaluate_now_reports_what_fired_and_opens_the_incident(admin_a, tenant_a):
    make_gpu_node(tenant_a, hostname="acme-gpu-hot-01")
    now = timezone.now().replace(second=0, microsecond=0)
    feed(
        tenant_a,
        "compute:acme-gpu-hot-01",
        "gpu_utilization",
        [97.0] * 7,
        start=now - dt.timedelta(minutes=30),
    )
    make_rule(tenant_a)

    response = admin_a.client.post(url(tenant_a, "evaluate"), {})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["rules"] == 1
    assert body["counts"]["opened"] == 1
    (outcome,) = body["outcomes"]
    (incident,) = alert_incidents(tenant_a)
    assert (outcome["state"], outcome["resource_name"], outcome["incident"]) == (
        "opened",
        "acme-gpu-hot-01",
        incident.reference,
    )
    again = admin_a.client.post(url(tenant_a, "evaluate"), {}).json()
    assert again["counts"]["opened"] == 0
    assert again["counts"]["firing"] == 1
    assert (
        admin_a.client.post(url(tenant_a, "evaluate"), {"as_of": "2020-01-01"}).status_code == 400
    )


def test_evaluate_as_a_dry_run_writes_nothing(admin_a, tenant_a):
    make_gpu_node(tenant_a, hostname="acme-gpu-hot-01")
    now = timezone.now().replace(second=0, microsecond=0)
    start = now - dt.timedelta(minutes=30)
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", [97.0] * 7, start=start)
    make_rule(tenant_a)
    audit = AuditEvent.objects.count()
    response = admin_a.client.post(url(tenant_a, "evaluate"), {"dry_run": True})
    assert response.status_code == 200, response.content
    assert (response.json()["dry_run"], response.json()["counts"]["opened"]) == (True, 1)
    assert alert_incidents(tenant_a) == []
    assert AuditEvent.objects.count() == audit
    bad = admin_a.client.post(url(tenant_a, "evaluate"), {"dry_run": "perhaps"})
    assert bad.status_code == 400
    assert "dry_run" in bad.json()["error"]["fields"]


def test_filters_and_search(admin_a, tenant_a):
    make_rule(tenant_a, name="GPU saturated")
    make_rule(tenant_a, name="GPU idle", condition="below", threshold=5, severity="SEV4")
    make_rule(tenant_a, name="Off", enabled=False)
    default = make_default(name="Default")
    with tenant_scope(tenant_a.id):
        from operations.incidents import alerting

        alerting.alert_rule_create(tenant=tenant_a, default_rule=default, threshold=80)

    def names(**params):
        response = admin_a.client.get(url(tenant_a), params)
        assert response.status_code == 200, response.content
        return [row["name"] for row in response.json()["results"]]

    assert names(condition="below") == ["GPU idle"]
    assert names(enabled="false") == ["Off"]
    assert names(severity="SEV4") == ["GPU idle"]
    assert names(overrides_default="true") == ["Default"]
    assert names(search="idle") == ["GPU idle"]
    assert names(ordering="-name") == ["Off", "GPU saturated", "GPU idle", "Default"]
    bad = admin_a.client.get(url(tenant_a), {"enabled": "maybe"})
    assert bad.status_code == 400
    assert "enabled" in bad.json()["error"]["fields"]


@pytest.mark.parametrize("route", ["", "in-force", "defaults"])
def test_lists_keep_a_constant_query_count(admin_a, tenant_a, route, django_assert_max_num_queries):
    address = "/api/v1/alert-rules/defaults" if route == "defaults" else url(tenant_a, route)
    make_default()
    make_rule(tenant_a)
    with django_assert_max_num_queries(query_budget()):
        assert admin_a.client.get(address).status_code == 200
    for number in range(30):
        make_rule(tenant_a, name=f"Rule {number}")
        make_default(name=f"Default {number}")
    with django_assert_max_num_queries(query_budget()):
        response = admin_a.client.get(address, {"page_size": 100})
    assert response.json()["count"] >= 31


def query_budget() -> int:
    # Token, tenant access, then the list (count and page, or rules and defaults); PostgreSQL
    # adds the scope's savepoint and its set_config statements.
    return 5 if connection.vendor == "sqlite" else 9
