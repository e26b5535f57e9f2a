"""Incident services: numbering, lifecycle, SLA clocks, breaches, grouping, Art. 73, outbox."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from operations.events.models import OutboxEvent
from operations.incidents import services
from operations.incidents.models import (
    Incident,
    IncidentStatus,
    Postmortem,
    TimelineEntry,
    TimelineKind,
)
from tenants import services as tenant_services
from tenants.models import AuditEvent, MspRole
from tenants.scoping import tenant_scope
from tests.factories import make_staff
from tests.incidents.factories import act, fresh, make_incident

pytestmark = pytest.mark.django_db

UTC = dt.UTC
# A Wednesday, 10:00 UTC; London is on GMT in January.
T0 = dt.datetime(2026, 1, 14, 10, 0, tzinfo=UTC)


def minutes(value: float) -> dt.timedelta:
    return dt.timedelta(minutes=value)


def entries(incident, **filters) -> list[TimelineEntry]:
    with tenant_scope(incident.tenant_id):
        return list(TimelineEntry.objects.filter(incident_id=incident.pk, **filters))


def events(tenant, **filters) -> list[OutboxEvent]:
    with tenant_scope(tenant.id):
        return list(OutboxEvent.objects.filter(**filters).order_by("id"))


def business_hours(tenant, **fields):
    defaults = {
        "coverage": "business_hours",
        "timezone": "Europe/London",
        "business_days": [0, 1, 2, 3, 4],
        "business_hours_start": dt.time(9),
        "business_hours_end": dt.time(17),
    }
    tenant_services.service_plan_update(tenant=tenant, **{**defaults, **fields})


# --- Numbering ----------------------------------------------------------------------------


def test_references_are_numbered_per_tenant(tenant_a, tenant_b):
    first = make_incident(tenant_a)
    second = make_incident(tenant_a)
    other = make_incident(tenant_b)
    assert (first.reference, second.reference, other.reference) == (
        "ACME-1",
        "ACME-2",
        "BOREALIS-1",
    )


def test_bad_input_neither_writes_nor_burns_a_number(tenant_a):
    with pytest.raises(ValidationError) as error:
        make_incident(tenant_a, category="weather")
    assert "category" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        make_incident(tenant_a, title="")
    assert "title" in error.value.message_dict
    assert make_incident(tenant_a).reference == "ACME-1"
    assert events(tenant_a, topic="incident.opened").__len__() == 1


# --- Lifecycle ------------------------------------------------------------------------------


def test_full_lifecycle_with_timeline_audit_and_events(tenant_a, engineer_a):
    incident = make_incident(tenant_a, at=T0)
    for action in ("acknowledge", "investigate", "mitigate", "resolve", "close"):
        incident = act(
            tenant_a,
            services.incident_transition,
            incident,
            action=action,
            user=engineer_a.user,
            at=T0 + minutes(10),
        )
    assert incident.status == IncidentStatus.CLOSED
    assert incident.acknowledged_at == incident.resolved_at == incident.closed_at
    status_entries = entries(incident, kind=TimelineKind.STATUS)
    assert [e.data["to"] for e in status_entries] == [
        "acknowledged",
        "investigating",
        "mitigated",
        "resolved",
        "closed",
    ]
    assert all(not e.internal and e.author == engineer_a.user for e in status_entries)
    assert [e.topic for e in events(tenant_a)] == [
        "incident.opened",
        "incident.acknowledged",
        "incident.resolved",
        "incident.closed",
    ]
    audited = AuditEvent.objects.filter(tenant=tenant_a, object_type="incidents.Incident")
    assert audited.filter(action="transition").count() == 5


@pytest.mark.parametrize(
    ("path", "action"),
    [
        ((), "investigate"),
        ((), "mitigate"),
        ((), "close"),
        ((), "reopen"),
        (("acknowledge",), "acknowledge"),
        (("acknowledge", "resolve"), "mitigate"),
        (("acknowledge", "resolve", "close"), "reopen"),
        (("acknowledge", "resolve", "close"), "resolve"),
    ],
)
def test_invalid_transitions_are_refused_naming_status(tenant_a, path, action):
    incident = make_incident(tenant_a)
    for step in path:
        incident = act(tenant_a, services.incident_transition, incident, action=step)
    before = (fresh(incident).status, len(entries(incident)), len(events(tenant_a)))
    with pytest.raises(ValidationError) as error:
        act(tenant_a, services.incident_transition, incident, action=action)
    message = error.value.message_dict["status"][0]
    assert f"Cannot {action}" in message
    assert (fresh(incident).status, len(entries(incident)), len(events(tenant_a))) == before


def test_closed_is_final_and_says_so(tenant_a):
    incident = make_incident(tenant_a)
    for step in ("resolve", "close"):
        incident = act(tenant_a, services.incident_transition, incident, action=step)
    with pytest.raises(ValidationError, match="none \\(closed is final\\)"):
        act(tenant_a, services.incident_transition, incident, action="reopen")


def test_reopen_goes_back_to_investigating_and_the_resolved_time_does_not_count(tenant_a):
    incident = make_incident(tenant_a, severity="SEV2", at=T0)  # resolve within 480 min
    incident = act(tenant_a, services.incident_acknowledge, incident, at=T0 + minutes(5))
    incident = act(tenant_a, services.incident_resolve, incident, at=T0 + minutes(60))
    incident = act(
        tenant_a, services.incident_transition, incident, action="reopen", at=T0 + minutes(180)
    )
    assert incident.status == IncidentStatus.INVESTIGATING
    assert incident.resolved_at is None
    # 120 minutes stood resolved: the deadline moves by exactly that.
    assert incident.resolve_due_at == T0 + minutes(480 + 120)
    assert [e.topic for e in events(tenant_a)][-1] == "incident.reopened"


# --- SLA clocks -----------------------------------------------------------------------------


def test_clocks_start_from_the_plan_per_severity(tenant_a):
    incident = make_incident(tenant_a, severity="SEV1", at=T0)
    assert (incident.ack_target_minutes, incident.resolve_target_minutes) == (15, 240)
    assert incident.ack_due_at == T0 + minutes(15)
    assert incident.resolve_due_at == T0 + minutes(240)


def test_business_hours_clocks_use_the_tenant_zone_and_skip_the_weekend(tenant_a):
    business_hours(tenant_a, timezone="America/New_York")
    friday_3pm_ny = dt.datetime(2026, 1, 16, 20, 0, tzinfo=UTC)
    incident = make_incident(tenant_a, severity="SEV1", at=friday_3pm_ny)
    assert incident.ack_due_at == dt.datetime(2026, 1, 16, 20, 15, tzinfo=UTC)
    # 240 working minutes: 2 h on Friday, then 2 h from Monday 09:00 New York (14:00 UTC).
    assert incident.resolve_due_at == dt.datetime(2026, 1, 19, 16, 0, tzinfo=UTC)


def test_a_severity_change_recomputes_the_running_clocks(tenant_a):
    incident = make_incident(tenant_a, severity="SEV3", at=T0)
    assert incident.ack_due_at == T0 + minutes(240)
    incident = act(
        tenant_a,
        services.incident_change_severity,
        incident,
        severity="SEV1",
        reason="Customer-facing after all",
        at=T0 + minutes(5),
    )
    assert incident.ack_due_at == T0 + minutes(15)
    assert incident.resolve_due_at == T0 + minutes(240)
    assert (incident.ack_target_minutes, incident.resolve_target_minutes) == (15, 240)
    severity, note = entries(incident)[-2:]
    assert (severity.kind, severity.internal, severity.data) == (
        "severity",
        False,
        {"from": "SEV3", "to": "SEV1"},
    )
    assert (note.kind, note.internal, note.body) == ("comment", True, "Customer-facing after all")


def test_a_stopped_clock_keeps_its_deadline_when_the_severity_changes(tenant_a):
    incident = make_incident(tenant_a, severity="SEV1", at=T0)
    incident = act(tenant_a, services.incident_acknowledge, incident, at=T0 + minutes(5))
    incident = act(
        tenant_a, services.incident_change_severity, incident, severity="SEV4", at=T0 + minutes(6)
    )
    assert incident.ack_due_at == T0 + minutes(15)
    assert incident.ack_target_minutes == 15
    assert incident.resolve_due_at == T0 + minutes(7200)


def test_waiting_on_the_client_pauses_the_resolve_clock(tenant_a):
    business_hours(tenant_a)
    incident = make_incident(tenant_a, severity="SEV2", at=T0)  # Wed 10:00, 480 working min
    assert incident.resolve_due_at == dt.datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    incident = act(tenant_a, services.incident_acknowledge, incident, at=T0 + minutes(5))
    incident = act(
        tenant_a,
        services.incident_wait_on_client,
        incident,
        reason="Please confirm the maintenance window.",
        at=T0 + minutes(60),
    )
    assert incident.resolve_due_at is None
    assert incident.is_waiting_on_client
    # Nothing breaches while paused, even long after the old deadline.
    assert mark(tenant_a, T0 + dt.timedelta(days=3)) == 0
    incident = fresh(incident)
    assert incident.resolve_breached_at is None
    # Paused from Wed 11:00 to Thu 11:00: 8 working hours do not count.
    incident = act(
        tenant_a, services.incident_resume, incident, at=T0 + dt.timedelta(days=1, hours=1)
    )
    assert incident.sla_paused == dt.timedelta(hours=8)
    assert incident.resolve_due_at == dt.datetime(2026, 1, 16, 10, 0, tzinfo=UTC)
    kinds = [e.kind for e in entries(incident)]
    assert kinds[-2:] == ["paused", "resumed"]


def test_waiting_needs_an_acknowledged_open_incident(tenant_a):
    incident = make_incident(tenant_a)
    with pytest.raises(ValidationError) as error:
        act(tenant_a, services.incident_wait_on_client, incident)
    assert "status" in error.value.message_dict
    with pytest.raises(ValidationError, match="not waiting"):
        act(tenant_a, services.incident_resume, incident)


def test_resolving_while_waiting_ends_the_pause(tenant_a):
    incident = make_incident(tenant_a, severity="SEV2", at=T0)
    incident = act(tenant_a, services.incident_acknowledge, incident, at=T0 + minutes(1))
    incident = act(tenant_a, services.incident_wait_on_client, incident, at=T0 + minutes(10))
    incident = act(tenant_a, services.incident_resolve, incident, at=T0 + minutes(40))
    assert incident.waiting_since is None
    assert incident.sla_paused == minutes(30)


# --- Breaches -----------------------------------------------------------------------------


def mark(tenant, now):
    with tenant_scope(tenant.id):
        return services.incident_sla_breaches_mark(tenant=tenant, now=now)


def test_breaches_are_marked_once_with_one_entry_and_one_event(tenant_a, tenant_b):
    incident = make_incident(tenant_a, severity="SEV1", at=T0)
    untouched = make_incident(tenant_b, severity="SEV1", at=T0)
    assert mark(tenant_a, T0 + minutes(14)) == 0
    assert mark(tenant_a, T0 + minutes(16)) == 1
    assert mark(tenant_a, T0 + minutes(16)) == 0  # a second run at the same moment
    assert mark(tenant_a, T0 + minutes(300)) == 1  # now the resolve clock too
    assert mark(tenant_a, T0 + minutes(301)) == 0
    incident = fresh(incident)
    assert incident.ack_breached_at == T0 + minutes(15)
    assert incident.resolve_breached_at == T0 + minutes(240)
    breaches = entries(incident, kind__in=[TimelineKind.ACK_BREACH, TimelineKind.RESOLVE_BREACH])
    assert [(e.kind, e.internal) for e in breaches] == [
        ("ack_breach", False),
        ("resolve_breach", False),
    ]
    breached = events(tenant_a, topic="incident.sla_breached")
    assert [e.payload["clock"] for e in breached] == ["acknowledge", "resolve"]
    assert fresh(untouched).ack_breached_at is None


def test_a_late_acknowledgement_records_the_breach_itself(tenant_a):
    incident = make_incident(tenant_a, severity="SEV1", at=T0)
    incident = act(tenant_a, services.incident_acknowledge, incident, at=T0 + minutes(40))
    assert incident.ack_breached_at == T0 + minutes(15)
    assert mark(tenant_a, T0 + minutes(41)) == 0
    assert len(entries(incident, kind=TimelineKind.ACK_BREACH)) == 1
    assert len(events(tenant_a, topic="incident.sla_breached")) == 1


def test_a_recorded_breach_stands_after_a_downgrade(tenant_a):
    incident = make_incident(tenant_a, severity="SEV1", at=T0)
    mark(tenant_a, T0 + minutes(20))
    incident = act(
        tenant_a, services.incident_change_severity, incident, severity="SEV4", at=T0 + minutes(21)
    )
    assert incident.ack_breached_at == T0 + minutes(15)
    assert incident.ack_due_at == T0 + minutes(480)


def test_resolved_incidents_do_not_breach(tenant_a):
    incident = make_incident(tenant_a, severity="SEV1", at=T0)
    act(tenant_a, services.incident_resolve, incident, at=T0 + minutes(5))
    assert mark(tenant_a, T0 + dt.timedelta(days=30)) == 0


# --- Assignment and comments --------------------------------------------------------------


def test_only_staff_who_can_work_on_the_tenant_can_own_an_incident(
    tenant_a, tenant_b, engineer_a, msp_admin, admin_a
):
    incident = make_incident(tenant_a)
    analyst = make_staff(tenant_a, role=MspRole.ANALYST)
    engineer_b = make_staff(tenant_b)
    for user in (analyst, engineer_b, admin_a.user):
        with pytest.raises(ValidationError) as error:
            act(tenant_a, services.incident_assign, incident, assignee=user)
        assert "assignee" in error.value.message_dict
    incident = act(tenant_a, services.incident_assign, incident, assignee=engineer_a.user)
    assert incident.assignee == engineer_a.user
    incident = act(tenant_a, services.incident_assign, incident, assignee=msp_admin.user)
    assert incident.assignee == msp_admin.user
    incident = act(tenant_a, services.incident_assign, incident, assignee=None)
    assert incident.assignee is None
    assert [e.body for e in entries(incident, kind="assignment")] == [
        "Assigned to eng-a.",
        "Assigned to msp-admin.",
        "Unassigned.",
    ]


def test_comments_need_words(tenant_a):
    incident = make_incident(tenant_a)
    with pytest.raises(ValidationError) as error:
        act(tenant_a, services.incident_comment, incident, body="   ", internal=False)
    assert "body" in error.value.message_dict


# --- Grouping (what alert rules will use) -------------------------------------------------


def test_open_or_append_groups_by_dedupe_key_and_escalates(tenant_a, tenant_b):
    key = "gpu-util-low:node-7"
    with tenant_scope(tenant_a.id):
        first, created = services.incident_open_or_append(
            tenant=tenant_a,
            dedupe_key=key,
            title="GPU idle",
            category="cost_anomaly",
            severity="SEV4",
            detail="util 2% for 60 min",
            at=T0,
        )
        assert created
        again, created = services.incident_open_or_append(
            tenant=tenant_a,
            dedupe_key=key,
            title="GPU idle",
            category="cost_anomaly",
            severity="SEV3",
            detail="util 1% for 120 min",
            at=T0 + minutes(60),
        )
    assert not created
    assert again.pk == first.pk
    assert again.severity == "SEV3"
    alerts = entries(first, kind=TimelineKind.ALERT)
    assert [(e.body, e.internal) for e in alerts] == [
        ("util 2% for 60 min", True),
        ("util 1% for 120 min", True),
    ]
    with tenant_scope(tenant_b.id):
        _other, created = services.incident_open_or_append(
            tenant=tenant_b,
            dedupe_key=key,
            title="GPU idle",
            category="cost_anomaly",
            severity="SEV4",
        )
    assert created  # keys group within a tenant only


def test_auto_resolve_closes_the_loop_and_a_new_firing_opens_a_new_incident(tenant_a):
    key = "latency:fraud-scoring"
    with tenant_scope(tenant_a.id):
        first, _ = services.incident_open_or_append(
            tenant=tenant_a, dedupe_key=key, title="Slow", category="performance", severity="SEV2"
        )
        resolved = services.incident_auto_resolve(
            tenant=tenant_a, dedupe_key=key, reason="p95 back under 300 ms for 15 min"
        )
        assert resolved.pk == first.pk
        assert resolved.status == IncidentStatus.RESOLVED
        assert services.incident_auto_resolve(tenant=tenant_a, dedupe_key=key, reason="x") is None
        second, created = services.incident_open_or_append(
            tenant=tenant_a, dedupe_key=key, title="Slow", category="performance", severity="SEV2"
        )
    assert created
    assert second.pk != first.pk
    note = entries(first, kind=TimelineKind.COMMENT)[0]
    assert (note.body, note.internal) == ("p95 back under 300 ms for 15 min", False)


def test_a_dedupe_key_is_unique_among_open_incidents(tenant_a):
    make_incident(tenant_a, dedupe_key="k")
    with pytest.raises(ValidationError) as error:
        make_incident(tenant_a, dedupe_key="k")
    assert "dedupe_key" in error.value.message_dict


# --- EU AI Act Art. 73 --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "days"),
    [
        ("standard", 15),
        ("death", 10),
        ("critical_infrastructure", 2),
        ("widespread_infringement", 2),
    ],
)
def test_regulator_deadline_follows_article_73(tenant_a, kind, days):
    incident = make_incident(tenant_a, at=T0)
    aware = T0 + minutes(30)
    incident = act(
        tenant_a,
        services.incident_update,
        incident,
        serious=True,
        serious_kind=kind,
        aware_at=aware,
        at=T0 + minutes(40),
    )
    assert incident.regulator_deadline == aware + dt.timedelta(days=days)
    entry = entries(incident, kind=TimelineKind.SERIOUS)[0]
    assert "Art. 73" in entry.body
    assert not entry.internal


def test_serious_defaults_to_15_days_from_now_and_overdue_stands_out(tenant_a):
    incident = make_incident(tenant_a)
    incident = act(tenant_a, services.incident_update, incident, serious=True)
    assert incident.serious_kind == "standard"
    assert incident.regulator_deadline - incident.aware_at == dt.timedelta(days=15)
    assert not incident.regulator_overdue
    old = make_incident(tenant_a, title="Older")
    old = act(
        tenant_a,
        services.incident_update,
        old,
        serious=True,
        serious_kind="critical_infrastructure",
        aware_at=old.created_at - dt.timedelta(days=3),
    )
    assert old.regulator_overdue
    old = act(tenant_a, services.incident_update, old, regulator_notified_at=old.created_at)
    assert not old.regulator_overdue


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"serious": False, "serious_kind": "death"}, "serious"),
        ({"serious": True, "aware_at": dt.datetime(2099, 1, 1, tzinfo=UTC)}, "aware_at"),
        (
            {
                "serious": True,
                "aware_at": dt.datetime(2026, 1, 10, tzinfo=UTC),
                "regulator_notified_at": dt.datetime(2026, 1, 9, tzinfo=UTC),
            },
            "regulator_notified_at",
        ),
        ({"serious": True, "serious_kind": "meteor"}, "serious_kind"),
        ({"status": "closed"}, "status"),
    ],
)
def test_bad_art_73_input_names_the_field_and_changes_nothing(tenant_a, fields, field):
    incident = make_incident(tenant_a)
    with pytest.raises(ValidationError) as error:
        act(tenant_a, services.incident_update, incident, **fields)
    assert field in error.value.message_dict
    assert not fresh(incident).serious


# --- Postmortems --------------------------------------------------------------------------


def test_postmortems_only_for_resolved_sev1_and_sev2(tenant_a):
    minor = make_incident(tenant_a, severity="SEV3")
    minor = act(tenant_a, services.incident_resolve, minor)
    with pytest.raises(ValidationError) as error:
        act(tenant_a, services.postmortem_save, minor, summary="x")
    assert "severity" in error.value.message_dict
    major = make_incident(tenant_a, severity="SEV1")
    with pytest.raises(ValidationError) as error:
        act(tenant_a, services.postmortem_save, major, summary="x")
    assert "status" in error.value.message_dict
    major = act(tenant_a, services.incident_resolve, major)
    postmortem = act(
        tenant_a,
        services.postmortem_save,
        major,
        summary="Cable",
        action_items=[{"description": "Replace cables", "owner": "Colo", "done": False}],
    )
    again = act(
        tenant_a,
        services.postmortem_save,
        major,
        summary="Cable, really",
        action_items=[
            {"description": "Replace cables", "owner": "Colo", "done": True},
            {"description": "Alert per GPU", "owner": "MSP"},
        ],
    )
    assert again.pk == postmortem.pk
    with tenant_scope(tenant_a.id):
        assert Postmortem.objects.count() == 1
        assert [(i.description, i.done) for i in again.action_items.all()] == [
            ("Replace cables", True),
            ("Alert per GPU", False),
        ]


# --- Outbox -------------------------------------------------------------------------------


def _create_then_fail(tenant):
    with transaction.atomic():
        make_incident(tenant)
        raise RuntimeError("the request failed after the service ran")


def test_events_roll_back_with_the_change(tenant_a):
    with tenant_scope(tenant_a.id):
        with pytest.raises(RuntimeError):
            _create_then_fail(tenant_a)
        assert not Incident.objects.exists()
        assert not OutboxEvent.objects.exists()


def test_event_payloads_never_carry_internal_words(tenant_a, engineer_a):
    secret = "root password is hunter2"
    incident = make_incident(tenant_a, severity="SEV1", at=T0)
    act(
        tenant_a,
        services.incident_comment,
        incident,
        body=secret,
        internal=True,
        user=engineer_a.user,
    )
    incident = act(
        tenant_a,
        services.incident_acknowledge,
        incident,
        note=secret,
        note_internal=True,
        at=T0 + minutes(30),
    )
    mark(tenant_a, T0 + minutes(500))
    act(tenant_a, services.incident_resolve, incident, note=secret, note_internal=True)
    payloads = [event.payload for event in events(tenant_a)]
    assert {p["reference"] for p in payloads} == {"ACME-1"}
    assert len(payloads) == 5  # created, breached (ack), acknowledged, breached (resolve), resolved
    assert all(secret not in str(p) for p in payloads)
    assert all("timeline" not in p for p in payloads)


def test_the_audit_log_records_paused_time_in_seconds(tenant_a):
    incident = make_incident(tenant_a, at=T0)
    incident = act(tenant_a, services.incident_acknowledge, incident, at=T0 + minutes(1))
    incident = act(tenant_a, services.incident_wait_on_client, incident, at=T0 + minutes(2))
    act(tenant_a, services.incident_resume, incident, at=T0 + minutes(32))
    changed = AuditEvent.objects.filter(
        tenant=tenant_a, action="update", changes__has_key="sla_paused"
    ).get()
    assert changed.changes["sla_paused"] == [0.0, 1800.0]
