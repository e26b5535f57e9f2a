"""No-data (silence) alert rules against real samples: firing after the window of silence,
quiet while data flows, auto-resolve when data returns (once, audited), the tenant boundary,
a constant number of queries, the last-sample read itself, and the window that could never
decide refused in the service, the API and the admin."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from operations.incidents import alerting
from operations.incidents.alerting import AlertState
from operations.incidents.models import AlertRule, AlertRuleDefault, IncidentSource, TimelineKind
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.selectors import telemetry_last_sample_times
from operations.telemetry.storage import sample_store
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
from tests.inventory.estate import make_deployment, make_gpu_node

pytestmark = pytest.mark.django_db

UTIL = "gpu_utilization"


def minutes(value: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=value)


def silence_fields(**fields) -> dict:
    values = {
        "name": "Node silent",
        "condition": "no_data",
        "threshold": None,
        "window_minutes": 15,
        "severity": "SEV2",
        "category": "outage",
    }
    return rule_fields(**{**values, **fields})


def make_silence_rule(tenant, **fields):
    return make_rule(tenant, **silence_fields(**fields))


def states(evaluation) -> list[tuple[str, str]]:
    return [(outcome.resource_name, outcome.state) for outcome in evaluation.outcomes]


@pytest.fixture
def node(tenant_a):
    return make_gpu_node(tenant_a, hostname="acme-gpu-01")


# --- Firing ----------------------------------------------------------------------------------


def test_a_resource_silent_for_the_window_opens_one_incident(tenant_a, node):
    feed(tenant_a, "compute:acme-gpu-01", UTIL, [50.0] * 7, start=T0)  # T0 … T0+30
    rule = make_silence_rule(tenant_a)

    # At T0+45 the last sample (T0+30) is exactly 15 minutes old: not yet silent for longer.
    assert evaluate(tenant_a, minutes(45)).outcomes == []
    evaluation = evaluate(tenant_a, minutes(46))

    assert states(evaluation) == [("acme-gpu-01", AlertState.OPENED)]
    outcome = evaluation.outcomes[0]
    assert (outcome.samples, outcome.lowest, outcome.highest) == (0, None, None)
    assert outcome.last_sample_at == minutes(30)
    (incident,) = alert_incidents(tenant_a)
    assert incident.dedupe_key == f"alert:r{rule.pk}:compute:{node.pk}"
    assert incident.title == "Node silent: acme-gpu-01"
    assert (incident.severity, incident.category, incident.source, incident.status) == (
        "SEV2",
        "outage",
        IncidentSource.ALERT_RULE,
        "triggered",
    )
    assert incident.created_at == minutes(46)
    with tenant_scope(tenant_a.id):
        assert list(incident.compute.values_list("pk", flat=True)) == [node.pk]
    (alert,) = entries(incident, TimelineKind.ALERT)
    assert "No gpu_utilization sample from acme-gpu-01 since 2026-01-14 10:30 UTC" in alert.body

    # Still silent an hour later: still firing, nothing more written (a silence is said once).
    for at in (50, 61, 75, 106):
        assert states(evaluate(tenant_a, minutes(at))) == [("acme-gpu-01", AlertState.FIRING)]
    assert len(entries(fresh(incident), TimelineKind.ALERT)) == 1
    assert len(alert_incidents(tenant_a)) == 1


def test_nothing_fires_while_data_flows_nor_for_a_resource_that_never_reported(tenant_a, node):
    make_gpu_node(tenant_a, hostname="acme-gpu-unwired")  # in the inventory, never reported
    feed(tenant_a, "compute:acme-gpu-01", UTIL, [50.0] * 25, start=T0)  # T0 … T0+120
    make_silence_rule(tenant_a)
    for at in (0, 10, 15, 16, 40, 80, 120, 135):
        assert evaluate(tenant_a, minutes(at)).outcomes == [], at
    assert alert_incidents(tenant_a) == []
    assert states(evaluate(tenant_a, minutes(136))) == [("acme-gpu-01", AlertState.OPENED)]


def test_another_metric_of_the_resource_does_not_keep_the_rule_quiet(tenant_a, node):
    feed(tenant_a, "compute:acme-gpu-01", UTIL, [50.0] * 3, start=T0)
    feed(tenant_a, "compute:acme-gpu-01", "gpu_power_watts", [300.0] * 13, start=T0)
    make_silence_rule(tenant_a)
    assert states(evaluate(tenant_a, minutes(40))) == [("acme-gpu-01", AlertState.OPENED)]


def test_the_resource_filter_and_deployments(tenant_a, node):
    make_gpu_node(tenant_a, hostname="acme-cpu-01")
    make_deployment(tenant_a, name="chat-prod", environment="production")
    make_deployment(tenant_a, name="chat-dev", environment="development")
    feed(tenant_a, "compute:acme-gpu-01", UTIL, [50.0] * 3, start=T0)
    feed(tenant_a, "compute:acme-cpu-01", UTIL, [50.0] * 3, start=T0)
    feed(tenant_a, "deployment:chat-prod", "requests_per_second", [9.0] * 3, start=T0)
    feed(tenant_a, "deployment:chat-dev", "requests_per_second", [9.0] * 3, start=T0)
    make_silence_rule(tenant_a, resource_pattern="*-gpu-*")
    make_silence_rule(
        tenant_a,
        name="Traffic stopped",
        target="deployment",
        metric="requests_per_second",
        environment="production",
    )
    assert sorted(states(evaluate(tenant_a, minutes(40)))) == [
        ("acme-gpu-01", AlertState.OPENED),
        ("chat-prod", AlertState.OPENED),
    ]


def test_a_silence_longer_than_the_memory_before_the_rule_saw_it_does_not_fire(tenant_a, node):
    feed(tenant_a, "compute:acme-gpu-01", UTIL, [50.0] * 3, start=T0)
    make_silence_rule(tenant_a)
    # Silent since T0+10 for more than a day plus the window: taken as retired.
    assert evaluate(tenant_a, minutes(10 + 15 + 24 * 60 + 1)).outcomes == []
    assert alert_incidents(tenant_a) == []


# --- Resolving -------------------------------------------------------------------------------


def test_data_returning_resolves_the_incident_once_with_an_audited_reason(tenant_a, node):
    feed(tenant_a, "compute:acme-gpu-01", UTIL, [50.0] * 3, start=T0)  # T0 … T0+10
    make_silence_rule(tenant_a)
    assert states(evaluate(tenant_a, minutes(30))) == [("acme-gpu-01", AlertState.OPENED)]
    (incident,) = alert_incidents(tenant_a)

    feed(tenant_a, "compute:acme-gpu-01", UTIL, [50.0], start=minutes(52))
    transitions = AuditEvent.objects.filter(action="transition", object_id=str(incident.pk))
    before = transitions.count()
    evaluation = evaluate(tenant_a, minutes(53))

    assert states(evaluation) == [("acme-gpu-01", AlertState.RESOLVED)]
    assert evaluation.outcomes[0].last_sample_at == minutes(52)
    incident = fresh(incident)
    assert (incident.status, incident.resolved_at) == ("resolved", minutes(53))
    (why,) = entries(incident, TimelineKind.COMMENT)
    assert why.body == (
        "Auto-resolved: acme-gpu-01 is reporting gpu_utilization again "
        "(latest sample 2026-01-14 10:52 UTC)."
    )
    assert why.internal is False
    assert transitions.count() == before + 1
    # Resolved exactly once: later evaluations while data flows say nothing.
    feed(tenant_a, "compute:acme-gpu-01", UTIL, [50.0] * 3, start=minutes(55))
    assert evaluate(tenant_a, minutes(54)).outcomes == []
    assert evaluate(tenant_a, minutes(60)).outcomes == []
    assert len(alert_incidents(tenant_a)) == 1

    # A new silence is a new incident.
    assert states(evaluate(tenant_a, minutes(81))) == [("acme-gpu-01", AlertState.OPENED)]
    assert [i.status for i in alert_incidents(tenant_a)] == ["resolved", "triggered"]


def test_without_auto_resolve_the_incident_stays_open_when_data_returns(tenant_a, node):
    feed(tenant_a, "compute:acme-gpu-01", UTIL, [50.0] * 3, start=T0)
    make_silence_rule(tenant_a, auto_resolve=False)
    evaluate(tenant_a, minutes(30))
    feed(tenant_a, "compute:acme-gpu-01", UTIL, [50.0], start=minutes(40))
    assert states(evaluate(tenant_a, minutes(41))) == [("acme-gpu-01", AlertState.CLEARED)]
    (incident,) = alert_incidents(tenant_a)
    assert incident.status == "triggered"


def test_a_dry_run_reports_the_silence_and_writes_nothing(tenant_a, node):
    feed(tenant_a, "compute:acme-gpu-01", UTIL, [50.0] * 3, start=T0)
    make_silence_rule(tenant_a)
    with tenant_scope(tenant_a.id):
        evaluation = alerting.alert_rules_evaluate(tenant=tenant_a, as_of=minutes(30), dry_run=True)
    assert states(evaluation) == [("acme-gpu-01", AlertState.OPENED)]
    assert alert_incidents(tenant_a) == []


# --- The tenant boundary ---------------------------------------------------------------------


def test_another_tenants_samples_never_keep_a_rule_quiet(tenant_a, tenant_b, node):
    make_gpu_node(tenant_b, hostname="acme-gpu-01")  # the same hostname, B's own node
    feed(tenant_a, "compute:acme-gpu-01", UTIL, [50.0] * 3, start=T0)
    feed(tenant_b, "compute:acme-gpu-01", UTIL, [50.0] * 13, start=T0)
    # And samples stored under B for A's resource id (a store without foreign keys): still B's.
    with tenant_scope(tenant_b.id):
        sample_store().insert_samples(
            [
                (tenant_b.id, ResourceKind.COMPUTE, node.pk, METRICS_BY_NAME[UTIL].code, ts, 1.0)
                for ts in (minutes(30), minutes(35), minutes(40))
            ]
        )
    make_silence_rule(tenant_a)
    make_silence_rule(tenant_b)

    assert states(evaluate(tenant_a, minutes(40))) == [("acme-gpu-01", AlertState.OPENED)]
    assert evaluate(tenant_b, minutes(40)).outcomes == []
    assert alert_incidents(tenant_b) == []
    with tenant_scope(tenant_a.id):
        last = telemetry_last_sample_times(
            tenant=tenant_a,
            series=[(ResourceKind.COMPUTE, node.pk, METRICS_BY_NAME[UTIL])],
            since=T0,
            until=minutes(60),
        )
    assert last == {(ResourceKind.COMPUTE, node.pk, UTIL): minutes(10)}


# --- The read and its cost -------------------------------------------------------------------


def test_the_last_sample_read_sees_late_data_and_stops_at_until(tenant_a, node):
    other = make_gpu_node(tenant_a, hostname="acme-gpu-02")
    feed(tenant_a, "compute:acme-gpu-01", UTIL, [1.0, 2.0], start=minutes(10))  # T0+10, T0+15
    # A late batch: one sample before the stored ones and one after, in the same hour.
    feed(tenant_a, "compute:acme-gpu-01", UTIL, [3.0, 4.0], start=minutes(5), step=minutes(35) - T0)
    feed(tenant_a, "compute:acme-gpu-02", UTIL, [5.0] * 13, start=T0)  # T0 … T0+60
    series = [
        (ResourceKind.COMPUTE, node.pk, METRICS_BY_NAME[UTIL]),
        (ResourceKind.COMPUTE, other.pk, METRICS_BY_NAME[UTIL]),
        (ResourceKind.COMPUTE, other.pk, METRICS_BY_NAME["gpu_power_watts"]),  # none stored
    ]

    def last(until: dt.datetime, since: dt.datetime = T0) -> dict:
        with tenant_scope(tenant_a.id):
            return telemetry_last_sample_times(
                tenant=tenant_a, series=series, since=since, until=until
            )

    assert last(minutes(90)) == {
        (ResourceKind.COMPUTE, node.pk, UTIL): minutes(40),
        (ResourceKind.COMPUTE, other.pk, UTIL): minutes(60),
    }
    assert last(minutes(32)) == {
        (ResourceKind.COMPUTE, node.pk, UTIL): minutes(15),
        (ResourceKind.COMPUTE, other.pk, UTIL): minutes(30),
    }
    assert last(minutes(90), since=minutes(45)) == {
        (ResourceKind.COMPUTE, other.pk, UTIL): minutes(60)
    }
    with tenant_scope(tenant_a.id):
        assert telemetry_last_sample_times(tenant=tenant_a, series=[], since=T0, until=T0) == {}


def test_evaluation_costs_the_same_queries_for_one_silence_rule_or_many(tenant_a, node):
    for index in range(2, 6):
        make_gpu_node(tenant_a, hostname=f"acme-gpu-0{index}")
        feed(tenant_a, f"compute:acme-gpu-0{index}", UTIL, [50.0] * 3, start=T0)
    feed(tenant_a, "compute:acme-gpu-01", UTIL, [50.0] * 3, start=T0)
    make_deployment(tenant_a, name="chat-prod", environment="production")
    make_silence_rule(tenant_a, resource_pattern="acme-gpu-0?")

    def queries(at: int) -> int:
        with tenant_scope(tenant_a.id), CaptureQueriesContext(connection) as captured:
            alerting.alert_rules_evaluate(tenant=tenant_a, as_of=minutes(at))
        return len(captured)

    evaluate(tenant_a, minutes(30))  # opens the incidents: from then on, reads only
    one = queries(31)
    for index, metric in enumerate(("gpu_power_watts", "gpu_temperature_celsius", UTIL)):
        make_silence_rule(tenant_a, name=f"Silent {index}", metric=metric, site_code="")
    make_silence_rule(tenant_a, name="Silent node", resource_pattern="acme-gpu-03")
    make_default(**silence_fields(name="MSP silence", metric="gpu_power_watts"))
    make_silence_rule(
        tenant_a, name="Silent traffic", target="deployment", metric="requests_per_second"
    )
    evaluate(tenant_a, minutes(32))
    # Compute and deployment targets: one more inventory read, whatever the number of rules.
    assert queries(33) == one + 1
    make_silence_rule(tenant_a, name="Silent 4", metric="gpu_tensor_active")
    assert queries(34) == one + 1


# --- Validation ------------------------------------------------------------------------------


def test_a_window_shorter_than_two_sampling_intervals_is_refused(tenant_a):
    # The default sampling interval is 5 minutes: a rule needs at least 10.
    with tenant_scope(tenant_a.id), pytest.raises(ValidationError) as refused:
        alerting.alert_rule_create(tenant=tenant_a, **silence_fields(window_minutes=9))
    message = refused.value.message_dict["window_minutes"][0]
    assert message == (
        "A window of 9 min is shorter than twice the telemetry sampling interval (300 s): "
        "it could never decide. Use at least 10 min."
    )
    with pytest.raises(ValidationError) as refused:
        make_default(window_minutes=5)  # threshold rules too
    assert "window_minutes" in refused.value.message_dict
    assert AlertRuleDefault.objects.count() == 0
    assert make_silence_rule(tenant_a, window_minutes=10).window_minutes == 10
    with override_settings(TELEMETRY_SAMPLING_INTERVAL_SECONDS=30):
        assert make_silence_rule(tenant_a, name="Fast", window_minutes=1).window_minutes == 1


def test_threshold_goes_with_above_and_below_only(tenant_a):
    with pytest.raises(ValidationError) as refused:
        make_silence_rule(tenant_a, threshold=3.0)
    assert refused.value.message_dict["threshold"] == [
        "A no-data rule has no threshold: leave it empty."
    ]
    with pytest.raises(ValidationError) as refused:
        make_rule(tenant_a, threshold=None)
    assert refused.value.message_dict["threshold"] == ["This condition needs a threshold."]


def url(tenant, suffix: str = "") -> str:
    return f"/api/v1/tenants/{tenant.slug}/alert-rules/{suffix}"


def test_the_api_answers_a_short_window_with_the_one_error_format(admin_a, tenant_a):
    before = AuditEvent.objects.count()
    response = admin_a.client.post(url(tenant_a), silence_fields(window_minutes=5))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert list(error["fields"]) == ["window_minutes"]
    assert "shorter than twice the telemetry sampling interval" in str(error["fields"])
    with tenant_scope(tenant_a.id):
        assert AlertRule.objects.count() == 0
    assert AuditEvent.objects.count() == before

    created = admin_a.client.post(url(tenant_a), silence_fields())
    assert created.status_code == 201, created.content
    assert (created.json()["condition"], created.json()["threshold"]) == ("no_data", None)
    changed = admin_a.client.patch(url(tenant_a, f"{created.json()['id']}/"), {"window_minutes": 3})
    assert changed.status_code == 400
    assert list(changed.json()["error"]["fields"]) == ["window_minutes"]
    in_force = admin_a.client.get(url(tenant_a, "in-force")).json()["results"]
    assert [(r["condition"], r["threshold"]) for r in in_force] == [("no_data", None)]


def test_evaluate_now_reports_the_silence(admin_a, tenant_a):
    from django.utils import timezone

    make_gpu_node(tenant_a, hostname="acme-gpu-01")
    start = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=60)
    feed(tenant_a, "compute:acme-gpu-01", UTIL, [50.0] * 3, start=start)
    make_silence_rule(tenant_a)
    body = admin_a.client.post(url(tenant_a, "evaluate"), {}).json()
    assert body["counts"]["opened"] == 1
    (outcome,) = body["outcomes"]
    assert (outcome["lowest"], outcome["samples"]) == (None, 0)
    assert outcome["last_sample_at"].startswith((start + dt.timedelta(minutes=10)).isoformat()[:16])


def _admin_form(**fields) -> dict:
    values = {
        "name": "Node silent",
        "description": "",
        "enabled": "on",
        "target": "compute",
        "metric": UTIL,
        "condition": "no_data",
        "threshold": "",
        "window_minutes": "15",
        "resource_pattern": "",
        "site_code": "",
        "gpu_model": "",
        "environment": "",
        "severity": "SEV2",
        "category": "outage",
        "auto_resolve": "on",
    }
    return {**values, **fields}


def test_the_admin_form_refuses_a_short_window_and_saves_a_silence_rule(client, tenant_a):
    import html

    login_verified(client, make_staff(role=MspRole.ADMIN, username="boss"))
    add = reverse("admin:incidents_alertruledefault_add")
    refused = client.post(add, _admin_form(window_minutes="4"))
    assert refused.status_code == 200
    assert "A window of 4 min is shorter than twice" in html.unescape(refused.content.decode())
    assert AlertRuleDefault.objects.count() == 0
    response = client.post(add, _admin_form())
    assert response.status_code == 302
    default = AlertRuleDefault.objects.get()
    assert (default.condition, default.threshold, default.window_minutes) == ("no_data", None, 15)

    tenant_add = reverse("admin:incidents_alertrule_add")
    refused = client.post(tenant_add, _admin_form(tenant=tenant_a.pk, window_minutes="9"))
    assert "A window of 9 min is shorter than twice" in html.unescape(refused.content.decode())
    with tenant_scope(tenant_a.id):
        assert AlertRule.objects.count() == 0


def test_the_portal_lists_a_silence_rule(client, viewer_a, tenant_a):
    make_silence_rule(tenant_a)
    client.force_login(viewer_a.user)
    response = client.get(reverse("portal_incidents:alert-rules", kwargs={"slug": tenant_a.slug}))
    assert response.status_code == 200
    assert 'No <span class="mono">gpu_utilization</span> for 15 min' in response.content.decode()
