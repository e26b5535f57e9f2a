"""Alert rules against real samples: firing, grouping, auto-resolve, defaults and overrides,
resource filters, validation, and the tenant boundary of the evaluation."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from operations.incidents import alerting, services
from operations.incidents.alerting import AlertState
from operations.incidents.models import AlertRule, AlertRuleDefault, IncidentSource, TimelineKind
from operations.incidents.selectors import (
    alert_rule_resources,
    alert_rules_effective,
    alert_window_stats,
    deployments_watched_by_alert_rules,
)
from operations.telemetry.selectors import WindowStats
from tenants.scoping import tenant_scope
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
from tests.incidents.factories import act, fresh
from tests.inventory.estate import make_deployment, make_gpu_node, make_site

pytestmark = pytest.mark.django_db

HOT = [97.0] * 13  # T0 … T0+60 min, every 5 min


def minutes(value: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=value)


@pytest.fixture
def hot(tenant_a):
    return make_gpu_node(tenant_a, hostname="acme-gpu-hot-01")


@pytest.fixture
def idle(tenant_a):
    return make_gpu_node(tenant_a, hostname="acme-gpu-idle-01", gpu_model="NVIDIA L40S")


def states(evaluation) -> list[tuple[str, str]]:
    return [(outcome.resource_name, outcome.state) for outcome in evaluation.outcomes]


# --- Firing ----------------------------------------------------------------------------------


def test_a_rule_fires_when_every_sample_in_the_window_is_beyond_the_threshold(tenant_a, hot, idle):
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", HOT, start=T0)
    feed(tenant_a, "compute:acme-gpu-idle-01", "gpu_utilization", [2.0] * 13, start=T0)
    rule = make_rule(tenant_a, severity="SEV2")

    evaluation = evaluate(tenant_a, minutes(30))

    assert states(evaluation) == [("acme-gpu-hot-01", AlertState.OPENED)]
    (incident,) = alert_incidents(tenant_a)
    assert incident.dedupe_key == f"alert:r{rule.pk}:compute:{hot.pk}"
    assert incident.title == "GPU saturated: acme-gpu-hot-01"
    assert (incident.severity, incident.source, incident.status) == (
        "SEV2",
        IncidentSource.ALERT_RULE,
        "triggered",
    )
    assert incident.created_at == minutes(30)
    with tenant_scope(tenant_a.id):
        assert list(incident.compute.values_list("pk", flat=True)) == [hot.pk]
    (alert,) = entries(incident, TimelineKind.ALERT)
    assert "above 90 %" in alert.body
    assert "97 to 97 % over 4 samples" in alert.body
    assert evaluation.outcomes[0].incident == incident.reference


def test_one_sample_on_the_right_side_of_the_threshold_keeps_it_quiet(tenant_a, hot):
    values = [97.0, 97.0, 97.0, 97.0, 89.5, 97.0, 97.0]  # the dip at T0+20
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", values, start=T0)
    make_rule(tenant_a)
    assert evaluate(tenant_a, minutes(30)).outcomes == []
    assert alert_incidents(tenant_a) == []
    # Once the dip has left the window, it fires.
    assert states(evaluate(tenant_a, minutes(36))) == [("acme-gpu-hot-01", AlertState.OPENED)]


def test_a_window_without_samples_in_both_halves_cannot_fire(tenant_a, hot):
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", [97.0, 97.0], start=T0)
    make_rule(tenant_a)
    # Samples at T0 and T0+5 only: the first half of [T0-10, T0+5] has none.
    assert evaluate(tenant_a, minutes(5)).outcomes == []
    # And after the series stopped, the second half of the window has none.
    assert evaluate(tenant_a, minutes(25)).outcomes == []
    assert alert_incidents(tenant_a) == []


def test_below_rules_fire_on_an_idle_gpu(tenant_a, hot, idle):
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", HOT, start=T0)
    feed(tenant_a, "compute:acme-gpu-idle-01", "gpu_utilization", [2.0] * 13, start=T0)
    make_rule(tenant_a, name="GPU idle", condition="below", threshold=5, window_minutes=30)
    assert states(evaluate(tenant_a, minutes(45))) == [("acme-gpu-idle-01", AlertState.OPENED)]


def test_deployment_rules_fire_on_latency_and_link_the_deployment(tenant_a, tenant_b):
    deployment = make_deployment(tenant_a, name="fraud-scoring-prod", environment="production")
    make_deployment(tenant_a, name="fraud-scoring-dev", environment="development")
    feed(tenant_a, "deployment:fraud-scoring-prod", "inference_latency_p95_ms", [900] * 7, start=T0)
    feed(tenant_a, "deployment:fraud-scoring-dev", "inference_latency_p95_ms", [900] * 7, start=T0)
    make_rule(
        tenant_a,
        name="Latency",
        target="deployment",
        metric="inference_latency_p95_ms",
        threshold=500,
        environment="production",
        severity="SEV2",
    )
    assert states(evaluate(tenant_a, minutes(30))) == [("fraud-scoring-prod", AlertState.OPENED)]
    (incident,) = alert_incidents(tenant_a)
    with tenant_scope(tenant_a.id):
        assert list(incident.deployments.values_list("pk", flat=True)) == [deployment.pk]


# --- Grouping --------------------------------------------------------------------------------


def test_repeats_group_on_the_open_incident_once_per_window(tenant_a, hot):
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", HOT, start=T0)
    make_rule(tenant_a)

    assert states(evaluate(tenant_a, minutes(30))) == [("acme-gpu-hot-01", AlertState.OPENED)]
    # A minute later: still firing, already said within the window, nothing written.
    assert states(evaluate(tenant_a, minutes(31))) == [("acme-gpu-hot-01", AlertState.FIRING)]
    # A window later: one more alert entry on the same incident.
    assert states(evaluate(tenant_a, minutes(46))) == [("acme-gpu-hot-01", AlertState.APPENDED)]

    (incident,) = alert_incidents(tenant_a)
    assert [e.created_at for e in entries(incident, TimelineKind.ALERT)] == [
        minutes(30),
        minutes(46),
    ]


def test_evaluating_twice_at_the_same_moment_writes_once(tenant_a, hot):
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", HOT, start=T0)
    make_rule(tenant_a)
    evaluate(tenant_a, minutes(30))
    second = evaluate(tenant_a, minutes(30))
    assert states(second) == [("acme-gpu-hot-01", AlertState.FIRING)]
    (incident,) = alert_incidents(tenant_a)
    assert len(entries(incident, TimelineKind.ALERT)) == 1


def test_a_more_severe_repeat_raises_the_severity(tenant_a, hot):
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", HOT, start=T0)
    rule = make_rule(tenant_a, severity="SEV3")
    evaluate(tenant_a, minutes(30))
    with tenant_scope(tenant_a.id):
        alerting.alert_rule_update(tenant=tenant_a, rule=rule, severity="SEV1")
    assert states(evaluate(tenant_a, minutes(46))) == [("acme-gpu-hot-01", AlertState.APPENDED)]
    (incident,) = alert_incidents(tenant_a)
    assert incident.severity == "SEV1"


def test_after_a_manual_resolve_a_new_firing_opens_a_new_incident(tenant_a, hot):
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", HOT, start=T0)
    make_rule(tenant_a)
    evaluate(tenant_a, minutes(30))
    (first,) = alert_incidents(tenant_a)
    act(tenant_a, services.incident_resolve, first, at=minutes(31))
    assert states(evaluate(tenant_a, minutes(32))) == [("acme-gpu-hot-01", AlertState.OPENED)]
    first_again, second = alert_incidents(tenant_a)
    assert (first_again.pk, first_again.status) == (first.pk, "resolved")
    assert (second.number, second.status) == (first.number + 1, "triggered")


# --- Auto-resolve ----------------------------------------------------------------------------

COOLING = [97.0] * 6 + [40.0] * 7  # hot until T0+25, 40 % from T0+30 on


def test_the_incident_auto_resolves_once_the_condition_cleared_for_the_window(tenant_a, hot):
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", COOLING, start=T0)
    make_rule(tenant_a)
    evaluate(tenant_a, minutes(20))
    (incident,) = alert_incidents(tenant_a)

    # [T0+20, T0+35] holds both: neither fires nor clears.
    assert evaluate(tenant_a, minutes(35)).outcomes == []
    assert fresh(incident).status == "triggered"

    assert states(evaluate(tenant_a, minutes(50))) == [("acme-gpu-hot-01", AlertState.RESOLVED)]
    incident = fresh(incident)
    assert (incident.status, incident.resolved_at) == ("resolved", minutes(50))
    (why,) = entries(incident, TimelineKind.COMMENT)
    assert why.body.startswith("Auto-resolved: gpu_utilization on acme-gpu-hot-01")
    assert "at or below 90 % for 15 min" in why.body
    assert why.internal is False  # the client sees why it closed itself

    # Nothing open any more: a healthy resource is not reported.
    assert evaluate(tenant_a, minutes(55)).outcomes == []


def test_without_auto_resolve_a_cleared_incident_stays_open(tenant_a, hot):
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", COOLING, start=T0)
    make_rule(tenant_a, auto_resolve=False)
    evaluate(tenant_a, minutes(20))
    assert states(evaluate(tenant_a, minutes(50))) == [("acme-gpu-hot-01", AlertState.CLEARED)]
    (incident,) = alert_incidents(tenant_a)
    assert incident.status == "triggered"
    assert entries(incident, TimelineKind.COMMENT) == []


# --- MSP-wide defaults and overrides ---------------------------------------------------------


def test_defaults_apply_to_every_tenant_that_has_not_replaced_them(tenant_a, tenant_b, hot):
    default = make_default()
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", HOT, start=T0)
    evaluation = evaluate(tenant_a, minutes(30))
    assert [(o.rule_source, o.rule_id, o.state) for o in evaluation.outcomes] == [
        ("default", default.pk, AlertState.OPENED)
    ]
    (incident,) = alert_incidents(tenant_a)
    assert incident.dedupe_key == f"alert:d{default.pk}:compute:{hot.pk}"
    with tenant_scope(tenant_b.id):
        assert [r.pk for r in alert_rules_effective(tenant=tenant_b)] == [default.pk]


def test_a_disabled_override_switches_the_default_off_for_that_tenant_only(tenant_a, tenant_b, hot):
    default = make_default()
    make_rule(tenant_a, default_rule=default, enabled=False)
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", HOT, start=T0)
    assert evaluate(tenant_a, minutes(30)).outcomes == []
    with tenant_scope(tenant_a.id):
        assert alert_rules_effective(tenant=tenant_a) == []
    with tenant_scope(tenant_b.id):
        assert [r.pk for r in alert_rules_effective(tenant=tenant_b)] == [default.pk]


def test_deployments_watched_follow_the_rules_in_force(tenant_a, tenant_b):
    deployment = {"target": "deployment", "metric": "error_rate"}
    chat = make_deployment(tenant_a, name="chat-prod")
    search = make_deployment(tenant_a, name="search-prod")
    other = make_deployment(tenant_b, name="chat-prod")

    def watched(tenant, *deployments):
        with tenant_scope(tenant.id):
            ids = [d.pk for d in deployments]
            return deployments_watched_by_alert_rules(tenant=tenant, deployment_ids=ids)

    assert watched(tenant_a, chat, search) == set()
    make_rule(tenant_a, name="GPUs", resource_pattern="*")  # a compute rule watches none
    default = make_default(name="Chat errors", resource_pattern="chat-*", **deployment)
    assert watched(tenant_a, chat, search) == {chat.pk}
    assert watched(tenant_b, other) == {other.pk}
    # A disabled override switches the default off for tenant A only.
    make_rule(tenant_a, default_rule=default, enabled=False, **deployment)
    assert watched(tenant_a, chat, search) == set()
    assert watched(tenant_b, other) == {other.pk}
    make_rule(tenant_a, name="Search errors", resource_pattern="search-prod", **deployment)
    make_rule(tenant_a, name="Off", enabled=False, **deployment)  # no filter, but disabled
    assert watched(tenant_a, chat, search) == {search.pk}
    make_default(name="Everything", **deployment)  # no filter: every deployment
    assert watched(tenant_a, chat, search) == {chat.pk, search.pk}


def test_an_override_copies_what_it_does_not_change_and_takes_over_the_open_incident(tenant_a, hot):
    default = make_default(severity="SEV2", window_minutes=10)
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", HOT, start=T0)
    evaluate(tenant_a, minutes(30))
    (incident,) = alert_incidents(tenant_a)

    # The client's GPUs are meant to run hot: alert only above 99 %.
    with tenant_scope(tenant_a.id):
        override = alerting.alert_rule_create(tenant=tenant_a, default_rule=default, threshold=99.0)
    override = {k: getattr(override, k) for k in ("name", "severity", "window_minutes", "metric")}
    assert override == {
        "name": "GPU saturated",
        "severity": "SEV2",
        "window_minutes": 10,
        "metric": "gpu_utilization",
    }
    # 97 % is now "cleared" for the override, which continues the default's incident.
    assert states(evaluate(tenant_a, minutes(45))) == [("acme-gpu-hot-01", AlertState.RESOLVED)]
    assert fresh(incident).status == "resolved"


def test_a_default_can_be_overridden_once_per_tenant(tenant_a):
    default = make_default()
    with tenant_scope(tenant_a.id):
        alerting.alert_rule_create(tenant=tenant_a, default_rule=default, threshold=95)
    with pytest.raises(ValidationError) as error, tenant_scope(tenant_a.id):
        alerting.alert_rule_create(tenant=tenant_a, default_rule=default, threshold=96)
    assert error.value.message_dict
    with tenant_scope(tenant_a.id):
        assert AlertRule.objects.count() == 1


def test_deleting_a_default_removes_its_overrides(tenant_a):
    default = make_default()
    make_rule(tenant_a, default_rule=default, threshold=95)
    alerting.alert_rule_default_delete(rule=default)
    assert AlertRuleDefault.objects.count() == 0
    with tenant_scope(tenant_a.id):
        assert AlertRule.objects.count() == 0


# --- The resource filter ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {"acme-gpu-hot-01", "acme-gpu-hot-02", "acme-gpu-idle-01"}),
        ({"resource_pattern": "acme-gpu-hot-*"}, {"acme-gpu-hot-01", "acme-gpu-hot-02"}),
        ({"resource_pattern": "ACME-GPU-HOT-0?"}, {"acme-gpu-hot-01", "acme-gpu-hot-02"}),
        ({"resource_pattern": "acme-gpu-idle-01"}, {"acme-gpu-idle-01"}),
        ({"resource_pattern": "ACME-GPU-IDLE-01"}, {"acme-gpu-idle-01"}),
        ({"resource_pattern": "acme-gpu-idle"}, set()),  # no wildcard: the whole name
        ({"resource_pattern": "acme-gpu.hot.01"}, set()),  # a dot is a dot, not a wildcard
        ({"site_code": "lon-dc1"}, {"acme-gpu-hot-01"}),
        ({"gpu_model": "l40s"}, {"acme-gpu-idle-01"}),
    ],
)
def test_the_resource_filter_selects_compute(tenant_a, filters, expected):
    site = make_site(tenant_a, code="lon-dc1")
    make_gpu_node(tenant_a, hostname="acme-gpu-hot-01", site=site)
    make_gpu_node(tenant_a, hostname="acme-gpu-hot-02")
    make_gpu_node(tenant_a, hostname="acme-gpu-idle-01", gpu_model="NVIDIA L40S")
    rule = AlertRule(tenant=tenant_a, **rule_fields(**filters))
    with tenant_scope(tenant_a.id):
        names = set(
            alert_rule_resources(tenant=tenant_a, rule=rule).values_list("hostname", flat=True)
        )
    assert names == expected


def test_a_filtered_rule_fires_only_on_the_resources_it_selects(tenant_a, hot, idle):
    make_gpu_node(tenant_a, hostname="acme-gpu-hot-02")
    for host in ("acme-gpu-hot-01", "acme-gpu-hot-02", "acme-gpu-idle-01"):
        feed(tenant_a, f"compute:{host}", "gpu_utilization", HOT, start=T0)
    make_rule(tenant_a, resource_pattern="*-hot-02")
    assert states(evaluate(tenant_a, minutes(30))) == [("acme-gpu-hot-02", AlertState.OPENED)]


# --- The tenant boundary ---------------------------------------------------------------------


def test_evaluation_reads_only_the_tenants_own_samples(tenant_a, tenant_b, hot):
    make_gpu_node(tenant_b, hostname="acme-gpu-hot-01")  # same hostname, other tenant
    feed(tenant_b, "compute:acme-gpu-hot-01", "gpu_utilization", HOT, start=T0)
    make_default()
    make_rule(tenant_a, name="Own rule")
    assert evaluate(tenant_a, minutes(30)).outcomes == []  # A's node sent nothing
    assert alert_incidents(tenant_a) == []
    assert alert_incidents(tenant_b) == []  # and nothing was written in B either

    # B's own evaluation sees B's samples (through the default only: A's rule is A's).
    evaluation = evaluate(tenant_b, minutes(30))
    assert [(o.rule_source, o.state) for o in evaluation.outcomes] == [("default", "opened")]
    assert len(alert_incidents(tenant_b)) == 1
    assert alert_incidents(tenant_a) == []


# --- Validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"metric": "gpu_fun"}, "metric"),
        ({"metric": "inference_latency_p95_ms"}, "metric"),  # not reported by compute
        ({"threshold": float("inf")}, "threshold"),
        ({"threshold": float("nan")}, "threshold"),
        ({"threshold": 150.0}, "threshold"),  # utilisation tops out at 100 %
        ({"window_minutes": 0}, "window_minutes"),
        ({"window_minutes": 1441}, "window_minutes"),
        ({"condition": "sideways"}, "condition"),
        ({"severity": "SEV9"}, "severity"),
        ({"environment": "production"}, "environment"),  # compute has none
        ({"target": "deployment", "metric": "error_rate", "gpu_model": "H100"}, "gpu_model"),
        ({"target": "deployment", "metric": "error_rate", "environment": "moon"}, "environment"),
        ({"name": ""}, "name"),
        ({"owner": "me"}, "owner"),  # not a rule field
    ],
)
def test_bad_rules_are_refused_naming_the_field_and_write_nothing(tenant_a, fields, field):
    with pytest.raises(ValidationError) as error, tenant_scope(tenant_a.id):
        alerting.alert_rule_create(tenant=tenant_a, **rule_fields(**fields))
    assert field in error.value.message_dict
    with tenant_scope(tenant_a.id):
        assert AlertRule.objects.count() == 0
    with pytest.raises(ValidationError):
        make_default(**fields)
    assert AlertRuleDefault.objects.count() == 0


# --- The window read (telemetry's selector) --------------------------------------------------


def test_a_rules_window_reads_its_metric_for_the_resources_its_filter_selects(tenant_a, hot, idle):
    start = T0 + dt.timedelta(minutes=40)
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", [91, 92, 93, 94], start=start)
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", [95, 96, 97], start=minutes(60))
    feed(tenant_a, "compute:acme-gpu-idle-01", "gpu_utilization", [1, 2, 3, 4, 5], start=start)
    feed(tenant_a, "compute:acme-gpu-idle-01", "gpu_power_watts", [100] * 9, start=start)
    rule = AlertRule(tenant=tenant_a, **rule_fields())
    filtered = AlertRule(tenant=tenant_a, **rule_fields(resource_pattern="*-hot-*"))
    window = (minutes(45), minutes(65))
    with tenant_scope(tenant_a.id):
        every = alert_window_stats(tenant=tenant_a, rule=rule, start=window[0], end=window[1])
        only_hot = alert_window_stats(
            tenant=tenant_a, rule=filtered, start=window[0], end=window[1]
        )
    assert every == [
        WindowStats(hot.pk, 92.0, 96.0, 5, minutes(45), minutes(65)),
        WindowStats(idle.pk, 2.0, 5.0, 4, minutes(45), minutes(60)),
    ]
    assert only_hot == every[:1]


# --- Dry runs --------------------------------------------------------------------------------


def test_a_dry_run_reports_what_would_happen_and_writes_nothing(tenant_a, hot):
    from operations.events.models import OutboxEvent
    from tenants.models import AuditEvent

    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", COOLING, start=T0)
    make_rule(tenant_a)

    def writes() -> tuple[int, int, int]:
        with tenant_scope(tenant_a.id):
            return (
                AuditEvent.objects.count(),
                OutboxEvent.objects.count(),
                len(alert_incidents(tenant_a)),
            )

    before = writes()
    with tenant_scope(tenant_a.id):
        dry = alerting.alert_rules_evaluate(tenant=tenant_a, as_of=minutes(20), dry_run=True)
    assert dry.dry_run is True
    assert states(dry) == [("acme-gpu-hot-01", AlertState.OPENED)]
    assert (dry.outcomes[0].incident_id, dry.outcomes[0].incident) == (None, "")
    assert writes() == before

    evaluate(tenant_a, minutes(20))
    (incident,) = alert_incidents(tenant_a)
    assert incident.number == 1  # the dry run used no number

    with tenant_scope(tenant_a.id):
        dry = alerting.alert_rules_evaluate(tenant=tenant_a, as_of=minutes(50), dry_run=True)
    assert states(dry) == [("acme-gpu-hot-01", AlertState.RESOLVED)]
    assert dry.outcomes[0].incident == incident.reference
    assert fresh(incident).status == "triggered"


def test_switching_a_rule_off_or_deleting_it_leaves_a_note_on_its_open_incidents(tenant_a, hot):
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", HOT, start=T0)
    switched = make_rule(tenant_a, name="Switched")
    deleted = make_rule(tenant_a, name="Deleted", threshold=80)
    make_rule(tenant_a, name="Untouched", threshold=70)
    evaluate(tenant_a, minutes(30))
    by_rule = {i.title.split(":")[0]: i for i in alert_incidents(tenant_a)}
    with tenant_scope(tenant_a.id):
        alerting.alert_rule_update(tenant=tenant_a, rule=switched, enabled=False)
        alerting.alert_rule_update(tenant=tenant_a, rule=switched, threshold=95)  # still off
        alerting.alert_rule_delete(tenant=tenant_a, rule=deleted)
    for name, what in (("Switched", "was switched off"), ("Deleted", "was deleted")):
        (note,) = entries(by_rule[name], TimelineKind.COMMENT)
        assert note.internal is True
        assert f"The alert rule '{name}' {what}" in note.body
        assert fresh(by_rule[name]).status == "triggered"
    assert entries(by_rule["Untouched"], TimelineKind.COMMENT) == []
