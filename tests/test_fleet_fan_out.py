"""Every periodic fleet task fans out in chunks: with more tenants than a chunk holds, the beat
task sends ceil(N / chunk) ``tenants.fleet_chunk`` messages of at most a chunk each, covering
exactly the tenants with work; no task grows with the fleet."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from django.db import transaction
from django.utils import timezone

from msp.celery import app
from operations.events import delivery
from operations.events import services as event_services
from operations.events import tasks as event_tasks
from operations.incidents import tasks as incident_tasks
from operations.reports import tasks as report_tasks
from operations.telemetry import services as telemetry_services
from operations.telemetry import tasks as telemetry_tasks
from tenants.scoping import tenant_scope
from tenants.tasks import FLEET_TENANT_TASKS, fleet_chunk, fleet_chunks
from tests.factories import TenantFactory
from tests.fleet import record_fan_out, tenants_sent
from tests.incidents.alerting import make_default
from tests.incidents.factories import make_incident
from tests.inventory.estate import make_gpu_node
from tests.jobs.conftest import activate
from tests.telemetry.helpers import iso

pytestmark = pytest.mark.django_db

CHUNK = 2
FLEET = 5  # more than two chunks' worth: three chunks, the last one short


@pytest.fixture
def fleet(settings):
    settings.FLEET_CHUNK_SIZE = CHUNK
    return [TenantFactory(name=f"Fleet {n}", slug=f"fleet-{n}") for n in range(FLEET)]


def assert_chunked(sent: list[dict], task: str, tenant_ids: list[int]) -> None:
    assert {chunk["task"] for chunk in sent} == {task}
    assert len(sent) == math.ceil(len(tenant_ids) / CHUNK)
    assert all(1 <= len(chunk["tenant_ids"]) <= CHUNK for chunk in sent)
    assert sorted(tenants_sent(sent)) == sorted(tenant_ids)


def _ids(tenants) -> list[int]:
    return [tenant.id for tenant in tenants]


def test_telemetry_rollups(fleet, monkeypatch):
    hour = (timezone.now() - dt.timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    for tenant in fleet:
        make_gpu_node(tenant, hostname=f"{tenant.slug}-gpu-01")
        sample = {
            "resource": f"compute:{tenant.slug}-gpu-01",
            "metric": "gpu_utilization",
            "ts": iso(hour),
            "value": 50,
        }
        with tenant_scope(tenant.id):
            telemetry_services.telemetry_ingest_batch(tenant=tenant, samples=[sample])
    sent = record_fan_out(monkeypatch)
    assert telemetry_tasks.rollup_fleet.apply().get() == FLEET
    assert_chunked(sent, "telemetry.rollup_tenant", _ids(fleet))


def test_telemetry_retention(fleet, monkeypatch):
    sent = record_fan_out(monkeypatch)
    assert telemetry_tasks.retention_fleet.apply().get()["tenants"] == FLEET
    assert_chunked(sent, "telemetry.retention_tenant", _ids(fleet))


def test_telemetry_gpu_discovery(fleet, monkeypatch, settings):
    sent = record_fan_out(monkeypatch)
    assert telemetry_tasks.gpus_discover_fleet.apply().get() == 0  # built-in store: ingest learns
    assert sent == []
    settings.TELEMETRY_BACKEND = "victoriametrics"
    assert telemetry_tasks.gpus_discover_fleet.apply().get() == FLEET
    assert_chunked(sent, "telemetry.gpus_discover_tenant", _ids(fleet))


def test_sla_breach_scan(fleet, monkeypatch):
    for tenant in fleet:
        make_incident(tenant, severity="SEV1", at=timezone.now() - dt.timedelta(days=2))
    sent = record_fan_out(monkeypatch)
    assert incident_tasks.sla_breach_scan.apply().get() == FLEET
    assert_chunked(sent, "incidents.sla_breach_scan_tenant", _ids(fleet))


def test_alert_rule_evaluation(fleet, monkeypatch):
    make_default()  # in force for every active tenant
    sent = record_fan_out(monkeypatch)
    assert incident_tasks.alert_rules_evaluate_fleet.apply().get() == FLEET
    assert_chunked(sent, "incidents.alert_rules_evaluate_tenant", _ids(fleet))


def test_event_publishing_and_escalations(fleet, monkeypatch):
    for tenant in fleet:
        make_incident(tenant)  # an unpublished event and an open incident each
    sent = record_fan_out(monkeypatch)
    assert event_tasks.publish_outbox.apply().get() == FLEET
    assert_chunked(sent, "events.publish_tenant", _ids(fleet))
    sent.clear()
    assert event_tasks.escalations_fleet.apply().get() == FLEET
    assert_chunked(sent, "events.escalations_tenant", _ids(fleet))


def test_due_deliveries(fleet, monkeypatch, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    for tenant in fleet:
        with tenant_scope(tenant.id), transaction.atomic():
            event_services.endpoint_create(tenant=tenant, url="http://127.0.0.1:9/hook")
        make_incident(tenant)
        delivery.outbox_publish_tenant(tenant_id=tenant.id)  # pending deliveries, due now
    sent = record_fan_out(monkeypatch)
    assert event_tasks.send_due.apply().get() == FLEET
    assert_chunked(sent, "events.send_tenant_due", _ids(fleet))


def test_event_pruning(fleet, monkeypatch):
    sent = record_fan_out(monkeypatch)
    assert event_tasks.prune.apply().get()["tenants"] == FLEET
    assert_chunked(sent, "events.prune_tenant", _ids(fleet))


def test_monthly_report_schedule(fleet, monkeypatch):
    fleet = [activate(tenant) for tenant in fleet]  # only active tenants get reports
    sent = record_fan_out(monkeypatch)
    assert report_tasks.schedule_monthly.apply().get() == FLEET
    assert_chunked(sent, "reports.schedule_monthly_tenant", _ids(fleet))


def test_every_per_tenant_task_of_a_fan_out_is_covered_here():
    covered = {
        "telemetry.rollup_tenant",
        "telemetry.retention_tenant",
        "telemetry.gpus_discover_tenant",
        "incidents.sla_breach_scan_tenant",
        "incidents.alert_rules_evaluate_tenant",
        "events.publish_tenant",
        "events.escalations_tenant",
        "events.send_tenant_due",
        "events.prune_tenant",
        "reports.schedule_monthly_tenant",
    }
    assert covered == FLEET_TENANT_TASKS


def test_every_beat_entry_is_a_chunked_fan_out_or_bounded_by_itself():
    """A new beat entry must be weighed: a fan-out (tested above) or work that does not grow
    with the fleet (a batch limit, or none of it per tenant)."""
    fan_outs = {
        "telemetry.rollup_fleet",
        "telemetry.retention_fleet",
        "telemetry.gpus_discover_fleet",
        "incidents.sla_breach_scan",
        "incidents.alert_rules_evaluate_fleet",
        "events.publish_outbox",
        "events.send_due",
        "events.escalations_fleet",
        "events.prune",
        "reports.schedule_monthly",
    }
    bounded = {
        "jobs.drain_outbox",  # at most 5,000 messages a run, in batches of 200
        "jobs.recover_runs",  # at most 500 runs a run
        "telemetry.partitions_ensure",  # two daily partitions, whatever the fleet
    }
    assert {entry["task"] for entry in app.conf.beat_schedule.values()} == fan_outs | bounded


def test_the_chunks_are_bounded_and_cover_every_tenant():
    ids = list(range(1, 1002))
    chunks = fleet_chunks(ids, 200)
    assert len(chunks) == 6
    assert max(len(chunk) for chunk in chunks) == 200
    assert [tid for chunk in chunks for tid in chunk] == ids


def test_a_chunk_runs_each_tenant_and_survives_one_tenants_failure(fleet, monkeypatch):
    ran = []

    def rollup(*, tenant):
        if tenant.id == fleet[1].id:
            raise RuntimeError("this tenant's rollup breaks")
        ran.append(tenant.id)
        return {}

    monkeypatch.setattr(telemetry_services, "telemetry_rollup_pending", rollup)
    ids = _ids(fleet[: CHUNK + 1])
    result = fleet_chunk.apply(kwargs={"task": "telemetry.rollup_tenant", "tenant_ids": ids}).get()
    assert result == {"task": "telemetry.rollup_tenant", "done": 2, "failed": [fleet[1].id]}
    assert ran == [fleet[0].id, fleet[2].id]


def test_a_chunk_refuses_what_no_fan_out_sends():
    with pytest.raises(ValueError, match="does not run"):
        fleet_chunk.apply(kwargs={"task": "jobs.execute", "tenant_ids": [1]}).get()
    with pytest.raises(TypeError, match="integer tenant ids"):
        fleet_chunk.apply(kwargs={"task": "telemetry.rollup_tenant", "tenant_ids": ["1"]}).get()
