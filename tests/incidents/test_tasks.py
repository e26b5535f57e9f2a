"""The scheduled breach scan: fleet fan-out to the tenants that need it, per-tenant marking."""

from __future__ import annotations

import datetime as dt

import pytest

from operations.incidents import tasks
from operations.incidents.models import TimelineEntry, TimelineKind
from tenants import services as tenant_services
from tenants.models import AuditEvent, TenantStatus
from tenants.scoping import tenant_scope
from tests.factories import TenantFactory
from tests.fleet import record_fan_out, tenants_sent
from tests.incidents.factories import fresh, make_incident

pytestmark = pytest.mark.django_db

LONG_AGO = dt.datetime(2026, 1, 14, 10, 0, tzinfo=dt.UTC)


def test_the_fleet_scan_fans_out_only_to_tenants_with_a_due_clock(tenant_a, tenant_b, monkeypatch):
    quiet = TenantFactory(name="Cobalt", slug="cobalt")
    make_incident(tenant_a, severity="SEV1", at=LONG_AGO)
    make_incident(tenant_b)  # not due yet
    make_incident(quiet)
    sent = record_fan_out(monkeypatch)
    assert tasks.sla_breach_scan.apply().get() == 1
    assert tenants_sent(sent, tasks.sla_breach_scan_tenant.name) == [tenant_a.id]


def test_offboarded_tenants_are_left_alone(tenant_a, monkeypatch):
    make_incident(tenant_a, severity="SEV1", at=LONG_AGO)
    tenant_services.tenant_transition(tenant=tenant_a, to_status=TenantStatus.OFFBOARDED)
    assert tasks.tenants_with_due_clocks() == []


def test_the_tenant_scan_marks_breaches_once_however_often_it_runs(tenant_a, tenant_b):
    incident = make_incident(tenant_a, severity="SEV1", at=LONG_AGO)
    other = make_incident(tenant_b, severity="SEV1", at=LONG_AGO)
    assert tasks.sla_breach_scan_tenant.apply(kwargs={"tenant_id": tenant_a.id}).get() == 2
    assert tasks.sla_breach_scan_tenant.apply(kwargs={"tenant_id": tenant_a.id}).get() == 0
    with tenant_scope(tenant_a.id):
        assert (
            TimelineEntry.objects.filter(
                incident_id=incident.pk,
                kind__in=[TimelineKind.ACK_BREACH, TimelineKind.RESOLVE_BREACH],
            ).count()
            == 2
        )
    assert fresh(other).ack_breached_at is None  # the task ran in tenant A's scope only
    audit = AuditEvent.objects.filter(tenant=tenant_a, changes__has_key="ack_breached_at").get()
    assert (audit.source, audit.actor_label) == ("job", "Groundwork (automatic)")


def test_a_vanished_tenant_is_skipped(db):
    assert tasks.sla_breach_scan_tenant.apply(kwargs={"tenant_id": 987654}).get() is None


def test_the_beat_entries_name_the_fleet_tasks():
    from celery import current_app

    from operations.incidents.celery_config import INCIDENTS_BEAT_SCHEDULE

    names = [entry["task"] for entry in INCIDENTS_BEAT_SCHEDULE.values()]
    assert names == [tasks.sla_breach_scan.name, tasks.alert_rules_evaluate_fleet.name]
    assert all(name in current_app.tasks for name in names)


# --- Alert rules ---------------------------------------------------------------------------------


def test_the_alert_fleet_task_fans_out_to_tenants_with_rules_in_force(
    tenant_a, tenant_b, monkeypatch
):
    from tests.incidents.alerting import make_default, make_rule

    sent = record_fan_out(monkeypatch)
    assert tasks.alert_rules_evaluate_fleet.apply().get() == 0
    assert sent == []
    make_rule(tenant_b)
    make_rule(tenant_a, enabled=False)
    assert tasks.alert_rules_evaluate_fleet.apply().get() == 1
    assert tenants_sent(sent, tasks.alert_rules_evaluate_tenant.name) == [tenant_b.id]

    # A default is in force everywhere, but never for an offboarded tenant.
    make_default()
    tenant_services.tenant_transition(tenant=tenant_a, to_status=TenantStatus.OFFBOARDED)
    sent.clear()
    assert tasks.alert_rules_evaluate_fleet.apply().get() == 1
    assert tenants_sent(sent) == [tenant_b.id]


def test_the_tenant_alert_task_evaluates_now_in_the_tenants_scope(tenant_a, tenant_b):
    from django.utils import timezone

    from tests.incidents.alerting import alert_incidents, feed, make_rule
    from tests.inventory.estate import make_gpu_node

    make_gpu_node(tenant_a, hostname="acme-gpu-hot-01")
    start = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=30)
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", [97.0] * 7, start=start)
    make_rule(tenant_a)
    counts = tasks.alert_rules_evaluate_tenant.apply(kwargs={"tenant_id": tenant_a.id}).get()
    assert counts["opened"] == 1
    again = tasks.alert_rules_evaluate_tenant.apply(kwargs={"tenant_id": tenant_a.id}).get()
    assert (again["opened"], again["firing"]) == (0, 1)
    (incident,) = alert_incidents(tenant_a)
    assert incident.reporter_label == "Groundwork (automatic)"
    assert alert_incidents(tenant_b) == []


def test_the_beat_schedule_evaluates_alert_rules_every_minute():
    from msp.celery import app

    entry = app.conf.beat_schedule["incidents: evaluate alert rules"]
    assert entry["task"] == tasks.alert_rules_evaluate_fleet.name
    assert entry["schedule"] == 60.0
