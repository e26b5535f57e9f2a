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
from tests.incidents.factories import fresh, make_incident

pytestmark = pytest.mark.django_db

LONG_AGO = dt.datetime(2026, 1, 14, 10, 0, tzinfo=dt.UTC)


def test_the_fleet_scan_fans_out_only_to_tenants_with_a_due_clock(tenant_a, tenant_b, monkeypatch):
    quiet = TenantFactory(name="Cobalt", slug="cobalt")
    make_incident(tenant_a, severity="SEV1", at=LONG_AGO)
    make_incident(tenant_b)  # not due yet
    make_incident(quiet)
    enqueued = []
    monkeypatch.setattr(
        tasks.sla_breach_scan_tenant, "delay", lambda **kwargs: enqueued.append(kwargs)
    )
    assert tasks.sla_breach_scan.apply().get() == 1
    assert enqueued == [{"tenant_id": tenant_a.id}]


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
    assert (audit.source, audit.actor_label) == ("job", "task incidents.sla_breach_scan_tenant")


def test_a_vanished_tenant_is_skipped(db):
    assert tasks.sla_breach_scan_tenant.apply(kwargs={"tenant_id": 987654}).get() is None


def test_the_beat_entry_names_the_fleet_task():
    from celery import current_app

    from operations.incidents.celery_config import INCIDENTS_BEAT_SCHEDULE

    (entry,) = INCIDENTS_BEAT_SCHEDULE.values()
    assert entry["task"] == tasks.sla_breach_scan.name
    assert entry["task"] in current_app.tasks
