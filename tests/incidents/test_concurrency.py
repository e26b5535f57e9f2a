"""Races on PostgreSQL: real transactions in threads, each on its own connection (as the app's
ordinary role, so row-level security is in force too)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from operations.events.models import OutboxEvent
from operations.incidents import alerting, services
from operations.incidents.models import Incident, TimelineEntry, TimelineKind
from tenants.scoping import tenant_scope
from tests.concurrency import run_together
from tests.conftest import requires_postgres
from tests.incidents.factories import make_incident

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

T0 = dt.datetime(2026, 1, 14, 10, 0, tzinfo=dt.UTC)


def test_two_breach_runs_at_the_same_moment_mark_each_breach_once(tenant_a, monkeypatch):
    incident = make_incident(tenant_a, severity="SEV1", at=T0)
    now = T0 + dt.timedelta(hours=5)
    # Both runs have found the same candidates before either marks one: the worst case.
    found = threading.Barrier(2)
    original = services._mark_breach
    first_call = threading.local()

    def mark_after_both_found(*args, **kwargs):
        if not getattr(first_call, "done", False):
            first_call.done = True
            found.wait(timeout=10)
        return original(*args, **kwargs)

    monkeypatch.setattr(services, "_mark_breach", mark_after_both_found)

    def scan(_index):
        with tenant_scope(tenant_a.id):
            return services.incident_sla_breaches_mark(tenant=tenant_a, now=now)

    marked = run_together(2, scan)
    assert sum(marked) == 2  # acknowledge and resolve, each by exactly one of the runs
    with tenant_scope(tenant_a.id):
        breaches = TimelineEntry.objects.filter(
            incident_id=incident.pk,
            kind__in=[TimelineKind.ACK_BREACH, TimelineKind.RESOLVE_BREACH],
        )
        assert sorted(breaches.values_list("kind", flat=True)) == ["ack_breach", "resolve_breach"]
        assert OutboxEvent.objects.filter(topic="incident.sla_breached").count() == 2


def test_concurrent_creations_get_distinct_consecutive_numbers(tenant_a):
    def create(index):
        return make_incident(tenant_a, title=f"Parallel {index}").number

    numbers = run_together(6, create)
    assert sorted(numbers) == [1, 2, 3, 4, 5, 6]


def test_two_openers_of_one_dedupe_key_make_one_incident(tenant_a):
    def open_or_append(_index):
        with tenant_scope(tenant_a.id):
            incident, created = services.incident_open_or_append(
                tenant=tenant_a,
                dedupe_key="xid:node-7",
                title="XID errors",
                category="outage",
                severity="SEV2",
            )
        return incident.pk, created

    results = run_together(2, open_or_append)
    assert len({pk for pk, _ in results}) == 1
    assert sorted(created for _, created in results) == [False, True]
    with tenant_scope(tenant_a.id):
        assert Incident.objects.count() == 1


def test_two_alert_evaluations_at_the_same_moment_open_one_incident(tenant_a):
    from operations.incidents.alerting import AlertState
    from tests.incidents.alerting import alert_incidents, entries, feed, make_rule
    from tests.inventory.estate import make_gpu_node

    make_gpu_node(tenant_a, hostname="acme-gpu-hot-01")
    make_gpu_node(tenant_a, hostname="acme-gpu-hot-02")
    for host in ("acme-gpu-hot-01", "acme-gpu-hot-02"):
        feed(tenant_a, f"compute:{host}", "gpu_utilization", [97.0] * 7, start=T0)
    make_rule(tenant_a)
    as_of = T0 + dt.timedelta(minutes=30)

    def evaluate(_index):
        with tenant_scope(tenant_a.id):
            evaluation = alerting.alert_rules_evaluate(tenant=tenant_a, as_of=as_of)
        return sorted(outcome.state for outcome in evaluation.outcomes)

    results = run_together(2, evaluate)
    assert sorted(results) == [
        [AlertState.FIRING, AlertState.FIRING],
        [AlertState.OPENED, AlertState.OPENED],
    ]
    incidents = alert_incidents(tenant_a)
    assert len(incidents) == 2  # one per resource, not one per run
    assert [len(entries(incident, TimelineKind.ALERT)) for incident in incidents] == [1, 1]
