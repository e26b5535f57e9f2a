"""Alert rules aimed at each GPU of a node: judged on each GPU's own series, one incident per
GPU naming it (node, index, UUID) and resolved per GPU; silence per GPU; the node's aggregate
still judged by compute rules; validation, the API, the admin form and the tenant boundary."""

from __future__ import annotations

import datetime as dt
import html

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from operations.incidents import alerting
from operations.incidents.alerting import AlertState
from operations.incidents.models import AlertRule, AlertRuleDefault, Incident, TimelineKind
from operations.incidents.selectors import alert_rule_resources, deployments_watched_by_alert_rules
from tenants.models import AuditEvent, MspRole
from tenants.scoping import tenant_scope
from tests.factories import login_verified, make_staff
from tests.incidents.alerting import (
    T0,
    alert_incidents,
    entries,
    evaluate,
    feed,
    make_default,
    make_rule,
    rule_fields,
)
from tests.incidents.factories import fresh
from tests.inventory.estate import make_deployment, make_gpu_node, make_site
from tests.telemetry.gpu_samples import make_node_gpus, store_gpu_samples

pytestmark = pytest.mark.django_db

TEMP = "gpu_temperature_celsius"
HOT = [91.0] * 13  # T0 … T0+60 min, every 5 min
COOL = [60.0] * 13


def minutes(value: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=value)


def gpu_rule(tenant, **fields):
    values = {"name": "GPU hot", "metric": TEMP, "target": "gpu", "threshold": 85.0}
    return make_rule(tenant, **{**values, **fields})


def states(evaluation) -> list[tuple[str, str, str]]:
    return [(o.resource_kind, o.resource_name, o.state) for o in evaluation.outcomes]


@pytest.fixture
def node(tenant_a):
    return make_gpu_node(tenant_a, hostname="acme-gpu-01", gpu_count=4, gpu_uuids=[])


@pytest.fixture
def gpus(tenant_a, node):
    return make_node_gpus(tenant_a, node)


# --- Firing and resolving per GPU ------------------------------------------------------------


def test_each_gpu_is_judged_on_its_own_series_and_named_in_its_incident(tenant_a, node, gpus):
    with tenant_scope(tenant_a.id):
        gpus[2].uuid = "GPU-5c1f8a4e-0d3b-4a55-9a0e-2f6a3c7d9b10"
        gpus[2].save(update_fields=["uuid"])
    for gpu in gpus:
        store_gpu_samples(tenant_a, gpu, TEMP, HOT if gpu.index == 2 else COOL, start=T0)
    # The node's aggregate (the hottest GPU) is hot too: that is the compute rule's to judge.
    feed(tenant_a, "compute:acme-gpu-01", TEMP, HOT, start=T0)
    rule = gpu_rule(tenant_a)

    evaluation = evaluate(tenant_a, minutes(30))

    name = "acme-gpu-01 GPU 2 (GPU-5c1f8a4e-0d3b-4a55-9a0e-2f6a3c7d9b10)"
    assert states(evaluation) == [("gpu", name, AlertState.OPENED)]
    assert evaluation.outcomes[0].resource_id == gpus[2].pk
    (incident,) = alert_incidents(tenant_a)
    assert incident.dedupe_key == f"alert:r{rule.pk}:gpu:{gpus[2].pk}"
    assert incident.title == f"GPU hot: {name}"
    assert f"above 85 °C for 15 min on {name}." in incident.description
    with tenant_scope(tenant_a.id):
        # The incident is about the GPU's node: it shows on the node's page.
        assert list(incident.compute.values_list("pk", flat=True)) == [node.pk]
    (alert,) = entries(incident, TimelineKind.ALERT)
    assert f"{TEMP} on {name} stayed above 85 °C" in alert.body


def test_two_hot_gpus_open_two_incidents_and_each_resolves_on_its_own(tenant_a, gpus):
    for gpu in gpus:
        store_gpu_samples(tenant_a, gpu, TEMP, HOT if gpu.index in (0, 3) else COOL, start=T0)
    gpu_rule(tenant_a)
    assert [o.resource_id for o in evaluate(tenant_a, minutes(30)).outcomes] == [
        gpus[0].pk,
        gpus[3].pk,
    ]
    first, fourth = alert_incidents(tenant_a)

    # GPU 0 cools down, GPU 3 stays hot.
    store_gpu_samples(tenant_a, gpus[0], TEMP, [50.0] * 6, start=minutes(65))
    store_gpu_samples(tenant_a, gpus[3], TEMP, [92.0] * 6, start=minutes(65))
    evaluation = evaluate(tenant_a, minutes(90))

    by_gpu = {o.resource_id: o.state for o in evaluation.outcomes}
    assert by_gpu == {gpus[0].pk: AlertState.RESOLVED, gpus[3].pk: AlertState.APPENDED}
    assert (fresh(first).status, fresh(fourth).status) == ("resolved", "triggered")
    (why,) = entries(fresh(first), TimelineKind.COMMENT)
    assert why.body.startswith(f"Auto-resolved: {TEMP} on acme-gpu-01 GPU 0 has been at or below")
    # Once: a second evaluation finds nothing more to resolve.
    assert gpus[0].pk not in {o.resource_id for o in evaluate(tenant_a, minutes(91)).outcomes}


def test_compute_rules_keep_judging_the_nodes_aggregate_only(tenant_a, node, gpus):
    store_gpu_samples(tenant_a, gpus[1], TEMP, HOT, start=T0)  # one GPU hot, none else
    feed(tenant_a, "compute:acme-gpu-01", TEMP, COOL, start=T0)  # an aggregate that is not
    make_rule(tenant_a, name="Node hot", metric=TEMP, threshold=85.0)
    assert evaluate(tenant_a, minutes(30)).outcomes == []
    gpu_rule(tenant_a)
    assert [(o.rule_name, o.resource_kind) for o in evaluate(tenant_a, minutes(31)).outcomes] == [
        ("GPU hot", "gpu")
    ]


def test_a_below_rule_finds_the_idle_gpu(tenant_a, gpus):
    for gpu in gpus:
        store_gpu_samples(
            tenant_a, gpu, "gpu_utilization", [3.0 if gpu.index == 1 else 80.0] * 13, start=T0
        )
    gpu_rule(tenant_a, name="GPU idle", metric="gpu_utilization", condition="below", threshold=10)
    assert [o.resource_id for o in evaluate(tenant_a, minutes(30)).outcomes] == [gpus[1].pk]


# --- Silence per GPU -------------------------------------------------------------------------


def test_a_gpu_that_goes_silent_opens_one_incident_and_clears_once_when_it_returns(
    tenant_a, node, gpus
):
    for gpu in gpus:
        # GPU 3 stops after T0+20; the others go on to T0+60.
        store_gpu_samples(tenant_a, gpu, TEMP, [60.0] * (5 if gpu.index == 3 else 13), start=T0)
    rule = gpu_rule(
        tenant_a, name="GPU silent", condition="no_data", threshold=None, category="outage"
    )

    assert evaluate(tenant_a, minutes(35)).outcomes == []  # 15 min since its last: not yet
    evaluation = evaluate(tenant_a, minutes(36))
    assert states(evaluation) == [("gpu", "acme-gpu-01 GPU 3", AlertState.OPENED)]
    (incident,) = alert_incidents(tenant_a)
    assert incident.dedupe_key == f"alert:r{rule.pk}:gpu:{gpus[3].pk}"
    (alert,) = entries(incident, TimelineKind.ALERT)
    assert "No gpu_temperature_celsius sample from acme-gpu-01 GPU 3 since" in alert.body
    for at in (40, 55):
        assert states(evaluate(tenant_a, minutes(at))) == [
            ("gpu", "acme-gpu-01 GPU 3", AlertState.FIRING)
        ]
    assert len(entries(fresh(incident), TimelineKind.ALERT)) == 1

    store_gpu_samples(tenant_a, gpus[3], TEMP, [61.0], start=minutes(58))
    assert states(evaluate(tenant_a, minutes(60))) == [
        ("gpu", "acme-gpu-01 GPU 3", AlertState.RESOLVED)
    ]
    assert fresh(incident).status == "resolved"
    assert evaluate(tenant_a, minutes(61)).outcomes == []
    assert len(alert_incidents(tenant_a)) == 1


def test_gpu_silence_rules_cost_one_more_inventory_read_whatever_their_number(tenant_a, gpus):
    for gpu in gpus:
        store_gpu_samples(tenant_a, gpu, TEMP, [60.0] * 3, start=T0)
    silence = {"condition": "no_data", "threshold": None}
    make_rule(tenant_a, name="Node silent", metric=TEMP, **silence)

    def queries(at: int) -> int:
        with tenant_scope(tenant_a.id), CaptureQueriesContext(connection) as captured:
            alerting.alert_rules_evaluate(tenant=tenant_a, as_of=minutes(at))
        return len(captured)

    evaluate(tenant_a, minutes(30))
    one = queries(31)
    gpu_rule(tenant_a, name="GPU silent", **silence)
    evaluate(tenant_a, minutes(32))  # opens the GPUs' incidents: from then on, reads only
    with_gpus = queries(33)
    # One inventory read selects the GPUs, one names those firing.
    assert with_gpus == one + 2
    gpu_rule(tenant_a, name="GPU silent 2", metric="gpu_power_watts", **silence)
    gpu_rule(tenant_a, name="GPU silent 3", resource_pattern="acme-*", **silence)
    evaluate(tenant_a, minutes(34))
    assert queries(35) == with_gpus  # whatever the number of rules


# --- Selection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {("acme-gpu-01", 0), ("acme-gpu-01", 1), ("acme-l40-01", 0)}),
        ({"resource_pattern": "acme-gpu-*"}, {("acme-gpu-01", 0), ("acme-gpu-01", 1)}),
        ({"site_code": "lon-dc1"}, {("acme-l40-01", 0)}),
        ({"gpu_model": "l40s"}, {("acme-l40-01", 0)}),
        ({"gpu_model": "H100"}, {("acme-gpu-01", 0), ("acme-gpu-01", 1)}),
    ],
)
def test_a_gpu_rule_selects_the_gpus_of_the_nodes_its_filter_selects(tenant_a, filters, expected):
    h100 = make_gpu_node(tenant_a, hostname="acme-gpu-01", gpu_uuids=[])
    l40 = make_gpu_node(
        tenant_a,
        hostname="acme-l40-01",
        gpu_model="NVIDIA L40S",
        gpu_count=1,
        gpu_uuids=[],
        site=make_site(tenant_a, code="lon-dc1"),
    )
    make_node_gpus(tenant_a, h100)
    (l40_gpu,) = make_node_gpus(tenant_a, l40)
    with tenant_scope(tenant_a.id):
        # A GPU that does not report its model is judged by its node's.
        type(l40_gpu).objects.filter(pk=l40_gpu.pk).update(model_name="")
        rule = AlertRule(tenant=tenant_a, **rule_fields(target="gpu", **filters))
        found = set(
            alert_rule_resources(tenant=tenant_a, rule=rule).values_list(
                "compute__hostname", "index"
            )
        )
    assert found == expected


def test_gpu_rules_do_not_count_as_watching_deployments(tenant_a, node):
    deployment = make_deployment(tenant_a, compute=node)
    gpu_rule(tenant_a, resource_pattern="*")
    with tenant_scope(tenant_a.id):
        assert (
            deployments_watched_by_alert_rules(tenant=tenant_a, deployment_ids=[deployment.pk])
            == set()
        )


# --- The tenant boundary ---------------------------------------------------------------------


def test_a_gpu_rule_never_sees_another_tenants_gpus(tenant_a, tenant_b, gpus):
    foreign_node = make_gpu_node(tenant_b, hostname="acme-gpu-01", gpu_uuids=[])
    foreign = make_node_gpus(tenant_b, foreign_node)
    for gpu in foreign:
        store_gpu_samples(tenant_b, gpu, TEMP, HOT, start=T0)
    gpu_rule(tenant_a)
    gpu_rule(tenant_a, name="GPU silent", condition="no_data", threshold=None)
    for at in (30, 90):
        assert evaluate(tenant_a, minutes(at)).outcomes == []
    assert alert_incidents(tenant_a) == []
    assert alert_incidents(tenant_b) == []
    # B's own evaluation (through an MSP-wide default) sees B's GPUs, and only those.
    make_default(name="MSP GPU hot", metric=TEMP, target="gpu", threshold=85.0)
    outcomes = evaluate(tenant_b, minutes(30)).outcomes
    assert {o.resource_id for o in outcomes} == {gpu.pk for gpu in foreign}
    assert alert_incidents(tenant_a) == []
    with tenant_scope(tenant_b.id):
        assert Incident.objects.count() == 2


# --- Validation, API, admin ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"metric": "cost_per_hour", "threshold": 5}, "metric", "not reported per GPU"),
        ({"metric": "error_rate", "threshold": 5}, "metric", "not reported per GPU"),
        ({"environment": "production"}, "environment", "Only deployments"),
        ({"window_minutes": 9}, "window_minutes", "shorter than twice"),
        ({"threshold": 500}, "threshold", "never change state"),
    ],
)
def test_bad_gpu_rules_are_refused_naming_the_field(tenant_a, fields, field, message):
    with pytest.raises(ValidationError) as refused:
        gpu_rule(tenant_a, **fields)
    assert message in str(refused.value.message_dict[field])
    with tenant_scope(tenant_a.id):
        assert AlertRule.objects.count() == 0
    with pytest.raises(ValidationError):
        make_default(**{"target": "gpu", "metric": TEMP, "threshold": 85.0, **fields})
    assert AlertRuleDefault.objects.count() == 0


def api_url(tenant, suffix: str = "") -> str:
    return f"/api/v1/tenants/{tenant.slug}/alert-rules/{suffix}"


def test_the_api_writes_and_reads_a_gpu_rule(admin_a, tenant_a, gpus):
    created = admin_a.client.post(
        api_url(tenant_a), rule_fields(target="gpu", metric=TEMP, threshold=85)
    )
    assert created.status_code == 201, created.content
    assert created.json()["target"] == "gpu"
    in_force = admin_a.client.get(api_url(tenant_a, "in-force")).json()["results"]
    assert [r["target"] for r in in_force] == ["gpu"]
    assert admin_a.client.get(api_url(tenant_a), {"target": "gpu"}).json()["count"] == 1
    assert admin_a.client.get(api_url(tenant_a), {"target": "compute"}).json()["count"] == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"target": "gpus"}, "target"),
        ({"target": ["gpu"]}, "target"),
        ({"target": "gpu", "metric": "cost_per_hour", "threshold": 1}, "metric"),
        ({"target": "gpu", "environment": "production"}, "environment"),
    ],
)
def test_bad_targets_get_the_one_error_format_and_write_nothing(admin_a, tenant_a, changes, field):
    before = AuditEvent.objects.count()
    response = admin_a.client.post(
        api_url(tenant_a), rule_fields(**changes), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    with tenant_scope(tenant_a.id):
        assert AlertRule.objects.count() == 0
    assert AuditEvent.objects.count() == before


def _admin_form(**fields) -> dict:
    values = {
        "name": "GPU hot",
        "description": "",
        "enabled": "on",
        "target": "gpu",
        "metric": TEMP,
        "condition": "above",
        "threshold": "85",
        "window_minutes": "15",
        "resource_pattern": "",
        "site_code": "",
        "gpu_model": "H100",
        "environment": "",
        "severity": "SEV2",
        "category": "performance",
        "auto_resolve": "on",
    }
    return {**values, **fields}


def test_the_admin_forms_offer_each_gpu_and_refuse_a_metric_not_kept_per_gpu(client, tenant_a):
    login_verified(client, make_staff(role=MspRole.ADMIN, username="boss"))
    add = reverse("admin:incidents_alertruledefault_add")
    page = html.unescape(client.get(add).content.decode())
    assert "Each GPU of the compute resources" in page
    refused = client.post(add, _admin_form(metric="cost_per_hour", threshold="5"))
    assert refused.status_code == 200
    assert "cost_per_hour is not reported per GPU" in html.unescape(refused.content.decode())
    assert AlertRuleDefault.objects.count() == 0
    assert client.post(add, _admin_form()).status_code == 302
    assert AlertRuleDefault.objects.get().target == "gpu"

    tenant_add = reverse("admin:incidents_alertrule_add")
    response = client.post(tenant_add, _admin_form(tenant=tenant_a.pk, name="Mine"))
    assert response.status_code == 302, response.content
    with tenant_scope(tenant_a.id):
        assert AlertRule.objects.get().target == "gpu"


def test_the_portal_lists_a_gpu_rule_as_watching_each_gpu(client, viewer_a, tenant_a):
    gpu_rule(tenant_a)
    login_verified(client, viewer_a.user)
    page = client.get(reverse("portal_incidents:alert-rules", args=[tenant_a.slug]))
    assert page.status_code == 200
    assert "Each GPU of the compute resources" in page.content.decode()
