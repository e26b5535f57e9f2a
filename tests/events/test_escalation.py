"""Escalation and on call: steps fire at their minute, once each, stop on acknowledge; the
rotation's holder and overrides; SLA at risk at 75 %. Time moves by ``now=``."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from operations.events.escalation import escalations_run_for_tenant, on_call_now
from operations.events.models import (
    EscalationPolicy,
    IncidentSignal,
    Notification,
    OnCallOverride,
    OnCallRotation,
    OutboxEvent,
)
from operations.incidents.models import IncidentCategory
from operations.incidents.services import incident_acknowledge, incident_create
from tenants.models import MspRole, Severity
from tenants.scoping import tenant_scope
from tests.factories import make_staff

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)  # a Monday


@pytest.fixture
def rotation(db):
    first = make_staff(role=MspRole.ENGINEER, username="first")
    second = make_staff(role=MspRole.ENGINEER, username="second")
    return OnCallRotation.objects.create(
        name="Primary",
        shift="weekly",
        starts_at=START - dt.timedelta(days=7),
        members=[first.pk, second.pk],
    )


def test_the_rotation_turns_weekly_and_an_override_wins(rotation):
    first, second = rotation.members
    assert on_call_now(rotation, now=START - dt.timedelta(days=1)).user_id == first
    now = on_call_now(rotation, now=START + dt.timedelta(hours=1))
    assert (now.user_id, now.until) == (second, START + dt.timedelta(days=7))
    assert on_call_now(rotation, now=START + dt.timedelta(days=8)).user_id == first
    stand_in = make_staff(role=MspRole.ENGINEER, username="stand-in")
    OnCallOverride.objects.create(
        rotation=rotation, user=stand_in, starts_at=START, ends_at=START + dt.timedelta(hours=4)
    )
    held = on_call_now(rotation, now=START + dt.timedelta(hours=1))
    assert (held.user_id, held.override) == (stand_in.pk, True)
    assert on_call_now(rotation, now=START + dt.timedelta(hours=5)).user_id == second


def test_get_oncall_names_who_is_on_call_now(rotation, msp_admin, admin_a):
    response = msp_admin.client.get("/api/v1/oncall/")
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["rotation"] == "Primary"
    assert row["user"] in ("first", "second")
    assert admin_a.client.get("/api/v1/oncall/").status_code == 403


@pytest.fixture
def sev1(tenant_a, rotation):
    boss = make_staff(tenant_a, role=MspRole.ADMIN, username="boss")
    with tenant_scope(tenant_a.id), transaction.atomic():
        EscalationPolicy.objects.create(
            tenant=tenant_a,
            severities=["SEV1"],
            steps=[
                {"after_minutes": 0, "notify": [f"oncall:{rotation.pk}"]},
                {"after_minutes": 15, "notify": [f"user:{boss.pk}"]},
            ],
        )
        incident = incident_create(
            tenant=tenant_a,
            title="Cluster down",
            category=IncidentCategory.OUTAGE,
            severity=Severity.SEV1,
            at=START,
        )
    return incident, boss


def fired(tenant):
    with tenant_scope(tenant.id):
        return sorted(IncidentSignal.objects.values_list("key", flat=True))


def test_an_unacknowledged_sev1_escalates_at_the_right_minute_exactly_once(tenant_a, sev1):
    incident, boss = sev1
    assert escalations_run_for_tenant(tenant=tenant_a, now=START)["escalated"] == 1
    assert (
        escalations_run_for_tenant(tenant=tenant_a, now=START + dt.timedelta(minutes=14))[
            "escalated"
        ]
        == 0
    )
    at_15 = START + dt.timedelta(minutes=15)
    assert escalations_run_for_tenant(tenant=tenant_a, now=at_15)["escalated"] == 1
    # Again, and again later: nothing fires twice.
    assert escalations_run_for_tenant(tenant=tenant_a, now=at_15)["escalated"] == 0
    escalations_run_for_tenant(tenant=tenant_a, now=START + dt.timedelta(hours=1))
    with tenant_scope(tenant_a.id):
        policy_id = EscalationPolicy.objects.get().pk
    assert [k for k in fired(tenant_a) if k.startswith("escalation")] == [
        f"escalation:{policy_id}:0:0",
        f"escalation:{policy_id}:0:1",
    ]
    with tenant_scope(tenant_a.id):
        escalated = OutboxEvent.objects.filter(topic="incident.escalated").order_by("id")
        assert [e.payload["step"] for e in escalated] == [1, 2]
        assert escalated[1].payload["notified"] == [boss.email]
        emails = set(Notification.objects.values_list("recipient", flat=True))
    assert boss.email in emails
    assert "second@example.com" in emails  # on call that week


def test_acknowledging_stops_the_escalation(tenant_a, sev1):
    incident, _boss = sev1
    escalations_run_for_tenant(tenant=tenant_a, now=START)
    with tenant_scope(tenant_a.id):
        incident_acknowledge(tenant=tenant_a, incident=incident, at=START + dt.timedelta(minutes=5))
    escalations_run_for_tenant(tenant=tenant_a, now=START + dt.timedelta(minutes=30))
    assert [k for k in fired(tenant_a) if k.startswith("escalation")] == [
        k for k in fired(tenant_a) if k.endswith(":0:0")
    ]


def test_sla_at_risk_fires_at_75_percent_of_the_clock_once(tenant_a, sev1):
    incident, _boss = sev1
    span = incident.ack_due_at - incident.created_at
    before = incident.created_at + span * 0.7
    after = incident.created_at + span * 0.8
    escalations_run_for_tenant(tenant=tenant_a, now=before)
    assert "sla_at_risk:ack" not in fired(tenant_a)
    escalations_run_for_tenant(tenant=tenant_a, now=after)
    escalations_run_for_tenant(tenant=tenant_a, now=after + dt.timedelta(seconds=1))
    assert fired(tenant_a).count("sla_at_risk:ack") == 1
    with tenant_scope(tenant_a.id):
        [event] = OutboxEvent.objects.filter(topic="incident.sla_at_risk")
    assert event.payload["clock"] == "ack"
    assert timezone.is_aware(incident.created_at)


def test_the_console_shows_who_is_on_call(rotation):
    from django.test import Client

    from tests.factories import login_verified

    boss = make_staff(role=MspRole.ADMIN, username="msp-boss")
    client = Client()
    login_verified(client, boss)
    page = client.get("/admin/events/oncallrotation/")
    assert page.status_code == 200
    assert "Primary" in page.content.decode()
    assert " until " in page.content.decode()
