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


# --- Business hours -------------------------------------------------------------------------------

FRIDAY_1645 = dt.datetime(2026, 12, 11, 16, 45, tzinfo=dt.UTC)
MONDAY_0900 = dt.datetime(2026, 12, 14, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def office_hours(tenant_a, rotation):
    """Tenant A on a business-hours plan (Mon–Fri 09:00–17:00 UTC); two policies for SEV1: one
    on the plan's hours (page on call, then the boss 30 working minutes later), one around the
    clock (the boss after 30 minutes)."""
    from tenants.models import ServicePlan

    boss = make_staff(tenant_a, role=MspRole.ADMIN, username="office-boss")
    with tenant_scope(tenant_a.id), transaction.atomic():
        ServicePlan.objects.filter(tenant=tenant_a).update(
            coverage="business_hours",
            timezone="UTC",
            business_days=[0, 1, 2, 3, 4],
            business_hours_start=dt.time(9, 0),
            business_hours_end=dt.time(17, 0),
        )
        office = EscalationPolicy.objects.create(
            tenant=tenant_a,
            name="Office hours",
            severities=["SEV1"],
            hours="plan",
            steps=[
                {"after_minutes": 0, "notify": [f"oncall:{rotation.pk}"]},
                {"after_minutes": 30, "notify": [f"user:{boss.pk}"]},
            ],
        )
        night = EscalationPolicy.objects.create(
            tenant=tenant_a,
            name="Around the clock",
            severities=["SEV1"],
            steps=[{"after_minutes": 30, "notify": [f"user:{boss.pk}"]}],
        )
    return office, night


def raise_sev1(tenant, at):
    with tenant_scope(tenant.id), transaction.atomic():
        return incident_create(
            tenant=tenant,
            title="Inference down",
            category=IncidentCategory.OUTAGE,
            severity=Severity.SEV1,
            at=at,
        )


def steps_fired(tenant, policy) -> list[str]:
    prefix = f"escalation:{policy.pk}:"
    return [key.removeprefix(prefix) for key in fired(tenant) if key.startswith(prefix)]


def test_a_business_hours_policy_counts_only_working_minutes(tenant_a, office_hours):
    office, night = office_hours
    raise_sev1(tenant_a, FRIDAY_1645)
    escalations_run_for_tenant(tenant=tenant_a, now=FRIDAY_1645)
    assert steps_fired(tenant_a, office) == ["0:0"]
    # 15 working minutes are left on Friday; the clock stops at 17:00 and over the weekend.
    for now in (
        FRIDAY_1645 + dt.timedelta(minutes=30),
        dt.datetime(2026, 12, 12, 12, 0, tzinfo=dt.UTC),  # Saturday noon
        MONDAY_0900 + dt.timedelta(minutes=14),
    ):
        escalations_run_for_tenant(tenant=tenant_a, now=now)
        assert steps_fired(tenant_a, office) == ["0:0"], now
    # The around-the-clock policy on the same plan paged at Friday 17:15.
    assert steps_fired(tenant_a, night) == ["0:0"]

    at_0915 = MONDAY_0900 + dt.timedelta(minutes=15)
    assert escalations_run_for_tenant(tenant=tenant_a, now=at_0915)["escalated"] == 1
    assert escalations_run_for_tenant(tenant=tenant_a, now=at_0915)["escalated"] == 0
    assert steps_fired(tenant_a, office) == ["0:0", "0:1"]
    with tenant_scope(tenant_a.id):
        signal = IncidentSignal.objects.get(key=f"escalation:{office.pk}:0:1")
    assert signal.fired_at == at_0915


def test_a_business_hours_policy_pages_nobody_overnight_and_starts_when_the_office_opens(
    tenant_a, office_hours
):
    office, _night = office_hours
    saturday = dt.datetime(2026, 12, 12, 10, 0, tzinfo=dt.UTC)
    raise_sev1(tenant_a, saturday)
    escalations_run_for_tenant(tenant=tenant_a, now=MONDAY_0900 - dt.timedelta(seconds=1))
    assert steps_fired(tenant_a, office) == []
    escalations_run_for_tenant(tenant=tenant_a, now=MONDAY_0900)
    assert steps_fired(tenant_a, office) == ["0:0"]
    escalations_run_for_tenant(tenant=tenant_a, now=MONDAY_0900 + dt.timedelta(minutes=29))
    assert steps_fired(tenant_a, office) == ["0:0"]
    escalations_run_for_tenant(tenant=tenant_a, now=MONDAY_0900 + dt.timedelta(minutes=30))
    assert steps_fired(tenant_a, office) == ["0:0", "0:1"]
