"""Demo incidents: every kind the product shows, made through the services, idempotently."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from operations.incidents import alerting, services
from operations.incidents.demo import (
    CALM_SCENARIOS,
    ONBOARDING_SCENARIOS,
    seed_incident_owners,
    seed_incidents,
)
from operations.incidents.models import (
    OPEN_STATUSES,
    AlertRule,
    Incident,
    Postmortem,
    TimelineEntry,
)
from operations.inventory.models import AISystem
from tenants.models import MspRole, TenantRole
from tenants.owned import owned_object_create
from tenants.scoping import tenant_scope
from tests.factories import make_member, make_staff

pytestmark = pytest.mark.django_db


def test_seed_incidents_fills_every_state_once(tenant_a, tenant_b):
    make_member(tenant_a, TenantRole.MEMBER, username="demo-client")
    engineer = make_staff(tenant_a, role=MspRole.ENGINEER, username="demo-engineer")
    with tenant_scope(tenant_a.id):
        owned_object_create(tenant=tenant_a, model=AISystem, data={"name": "Fraud scoring"})
    created = seed_incidents(tenant_a)
    assert len(created) == 5
    assert seed_incidents(tenant_a) == []  # idempotent
    with tenant_scope(tenant_a.id):
        incidents = {i.dedupe_key: i for i in Incident.objects.all()}
        assert len(incidents) == 5
        breached = incidents["demo:breached-outage"]
        assert breached.ack_breached_at is not None
        assert breached.resolve_breached_at is not None
        assert breached.source == "portal"
        assert breached.sla_paused.total_seconds() > 0
        assert incidents["demo:open-latency"].assignee == engineer
        assert incidents["demo:open-latency"].status == "investigating"
        assert incidents["demo:resolved-xid"].status == "resolved"
        serious = incidents["demo:serious-drift"]
        assert serious.serious
        assert serious.regulator_overdue
        assert incidents["demo:new-language"].status == "triggered"
        postmortem = Postmortem.objects.get()
        assert postmortem.incident == incidents["demo:resolved-xid"]
        assert postmortem.action_items.count() == 2
        assert TimelineEntry.objects.filter(internal=True).exists()
        assert TimelineEntry.objects.filter(internal=False).count() > 10
    with tenant_scope(tenant_b.id):
        assert not Incident.objects.exists()


def test_seed_incidents_works_without_people_or_estate(tenant_b):
    assert len(seed_incidents(tenant_b)) == 5


def test_a_calm_tenant_gets_few_incidents_all_over_quickly(tenant_a):
    make_member(tenant_a, TenantRole.ADMIN, username="calm-client")
    make_staff(tenant_a, role=MspRole.ENGINEER, username="calm-engineer")

    created = seed_incidents(tenant_a, scenarios=CALM_SCENARIOS, alert_rules=False)

    assert sorted((i.severity, i.status) for i in created) == [
        ("SEV2", "resolved"),
        ("SEV3", "closed"),
    ]
    with tenant_scope(tenant_a.id):
        closed = Incident.objects.get(dedupe_key="demo:closed-batch")
        assert closed.resolved_at - closed.created_at < dt.timedelta(hours=1)
        assert closed.assignee.username == "calm-engineer"


def test_an_onboarding_tenant_gets_one_low_severity_question(tenant_a):
    make_staff(tenant_a, role=MspRole.ENGINEER, username="onboarding-engineer")

    created = seed_incidents(tenant_a, scenarios=ONBOARDING_SCENARIOS, alert_rules=False)

    assert [(i.severity, i.status, i.assignee.username) for i in created] == [
        ("SEV4", "acknowledged", "onboarding-engineer")
    ]
    with tenant_scope(tenant_a.id):
        assert not AlertRule.objects.exists()


def test_the_owners_pass_picks_up_what_was_left_and_closes_out_on_request(tenant_a, tenant_b):
    engineer = make_staff(tenant_a, role=MspRole.ENGINEER, username="owner-engineer")
    seed_incidents(tenant_a, alert_rules=False)
    with tenant_scope(tenant_a.id):
        serious = Incident.objects.get(dedupe_key="demo:serious-drift")
        assert serious.assignee is None
        # A SEV1 a scan raised a week ago and nobody touched.
        stale = services.incident_create(
            tenant=tenant_a,
            title="Compliance: a prohibited practice",
            severity="SEV1",
            category="compliance",
            source="compliance_check",
            at=timezone.now() - dt.timedelta(days=7),
        )

    changed = seed_incident_owners(tenant_a)

    assert changed == 2
    with tenant_scope(tenant_a.id):
        stale.refresh_from_db()
        serious.refresh_from_db()
        assert serious.assignee == engineer
        assert stale.assignee == engineer
        assert stale.status == "mitigated"
        newest = TimelineEntry.objects.filter(incident=stale).latest("created_at")
        assert timezone.now() - newest.created_at < dt.timedelta(days=1)
        # The brand-new incident waits for whoever picks it up.
        assert Incident.objects.get(dedupe_key="demo:new-language").assignee is None
    assert seed_incident_owners(tenant_a) == 0

    seed_incident_owners(tenant_a, close_out=True)

    with tenant_scope(tenant_a.id):
        assert not Incident.objects.filter(status__in=OPEN_STATUSES).exists()
    with tenant_scope(tenant_b.id):
        assert not Incident.objects.exists()


# --- Alert rules on the demo telemetry -----------------------------------------------------------


def test_the_demo_alert_rules_fire_group_and_auto_resolve_on_the_demo_telemetry(tenant_a, tenant_b):
    import datetime as dt

    from django.utils import timezone

    from operations.incidents.models import AlertRule, AlertRuleDefault, TimelineKind
    from operations.inventory.demo import seed_inventory
    from operations.inventory.models import Deployment
    from operations.telemetry.demo import seed_telemetry

    now = timezone.now().replace(second=0, microsecond=0)
    seed_inventory(tenant_a, profile="finance")
    seed_telemetry(tenant_a, days=1, now=now)
    seed_incidents(tenant_a, now=now)

    with tenant_scope(tenant_a.id):
        alerts = {
            i.title: i
            for i in Incident.objects.filter(dedupe_key__startswith="alert:").prefetch_related(
                "timeline"
            )
        }
        production = Deployment.objects.filter(environment="production").order_by("name").first()
        assert AlertRule.objects.count() == 4
        assert AlertRule.objects.filter(target="gpu").count() == 1  # each GPU on its own
        silence = AlertRule.objects.get(condition="no_data")
    assert AlertRuleDefault.objects.count() == 2

    latency = alerts[f"Production inference latency p95 above 500 ms: {production.name}"]
    errors = alerts[f"Production error rate above 2 %: {production.name}"]
    for incident in (latency, errors):
        assert incident.status == "resolved"
        assert incident.created_at == now - dt.timedelta(hours=7)
        assert incident.resolved_at == now - dt.timedelta(hours=5, minutes=45)
        assert any(e.body.startswith("Auto-resolved") for e in incident.timeline.all())

    hot = sorted(title for title in alerts if title.startswith("GPU saturated: "))
    hot_nodes = [f"acme-gpu-hot-0{n}" for n in range(1, 5)]
    assert hot == [f"GPU saturated: {name}" for name in hot_nodes]
    idle = alerts["Idle GPU node: acme-gpu-idle-01"]
    for incident in [idle, *(alerts[title] for title in hot)]:
        assert incident.status in ("triggered", "acknowledged")
        # Fired at the spike, again 75 minutes later and now: one incident, three alerts.
        kinds = [e.kind for e in incident.timeline.all() if e.kind == TimelineKind.ALERT]
        assert len(kinds) == 3
    assert len(alerts) == 7  # nothing fired on the diurnal nodes or the other deployments
    assert not any(title.startswith(f"{silence.name}: ") for title in alerts)  # all report

    # Once the telemetry is older than the window, the silence rule fires on each GPU node.
    with tenant_scope(tenant_a.id):
        later = alerting.alert_rules_evaluate(tenant=tenant_a, as_of=now + dt.timedelta(minutes=25))
    silent = sorted(o.resource_name for o in later.outcomes if o.rule_name == silence.name)
    assert {"acme-gpu-idle-01", *hot_nodes} <= set(silent)
    assert all("-gpu-" in name for name in silent)
    assert {o.state for o in later.outcomes if o.rule_name == silence.name} == {"opened"}

    # Idempotent: a second run creates nothing and writes nothing.
    with tenant_scope(tenant_a.id):
        entries_before = TimelineEntry.objects.count()
    assert seed_incidents(tenant_a, now=now + dt.timedelta(minutes=5)) == []
    with tenant_scope(tenant_a.id):
        assert TimelineEntry.objects.count() == entries_before
    assert AlertRuleDefault.objects.count() == 2
