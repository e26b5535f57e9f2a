"""Hourly rollups: exact min/max/avg/count on known data, late data re-rolled, idempotent runs,
the fleet fan-out, and the beat schedule."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from operations.telemetry import services, tasks
from operations.telemetry.celery_config import TELEMETRY_BEAT_SCHEDULE
from operations.telemetry.models import TelemetryDirtyHour, TelemetryRollup
from operations.telemetry.storage import sample_store
from tenants.scoping import tenant_scope
from tests.fleet import record_fan_out
from tests.telemetry.helpers import code, dirty_hours, iso, rollups

pytestmark = pytest.mark.django_db

COMPUTE, DEPLOYMENT = 1, 2


@pytest.fixture
def hour():
    """The start of the UTC hour three hours ago."""
    return (timezone.now() - dt.timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)


def ingest(tenant, samples):
    with tenant_scope(tenant.id):
        return services.telemetry_ingest_batch(tenant=tenant, samples=samples)


def at(hour, minutes, value, *, resource="compute:acme-gpu-sat-01", metric="gpu_utilization"):
    moment = hour + dt.timedelta(minutes=minutes)
    return {"resource": resource, "metric": metric, "ts": iso(moment), "value": value}


def roll(tenant) -> dict:
    return tasks.rollup_tenant.apply(kwargs={"tenant_id": tenant.id}).get()


def test_an_hour_is_rolled_up_exactly(tenant_a, estate, hour):
    node, deployment = estate["node"].pk, estate["deployment"].pk
    latency = {"resource": "deployment:fraud-scoring-prod", "metric": "inference_latency_p95_ms"}
    ingest(
        tenant_a,
        [
            at(hour, 0, 10),
            at(hour, 20, 20),
            at(hour, 59.99, 60),
            at(hour, 60, 5),  # the next hour
            at(hour, 5, 120, **latency),
            at(hour, 35, 80, **latency),
        ],
    )
    assert dirty_hours(tenant_a) == {hour, hour + dt.timedelta(hours=1)}
    assert roll(tenant_a) == {"hours": 2, "rollups": 3}
    util = code("gpu_utilization")
    assert rollups(tenant_a) == [
        (COMPUTE, node, util, hour, 10.0, 60.0, 30.0, 3),
        (COMPUTE, node, util, hour + dt.timedelta(hours=1), 5.0, 5.0, 5.0, 1),
        (DEPLOYMENT, deployment, code("inference_latency_p95_ms"), hour, 80.0, 120.0, 100.0, 2),
    ]
    assert dirty_hours(tenant_a) == set()


def test_late_data_re_rolls_its_hour_only(tenant_a, estate, hour):
    ingest(tenant_a, [at(hour, 0, 10), at(hour, 30, 20), at(hour, 70, 50)])
    roll(tenant_a)
    next_hour = [row for row in rollups(tenant_a) if row[3] != hour]
    ingest(tenant_a, [at(hour, 45, 100)])  # arrives after the hour was rolled up
    assert dirty_hours(tenant_a) == {hour}
    assert roll(tenant_a) == {"hours": 1, "rollups": 1}
    rows = rollups(tenant_a)
    (late,) = [row for row in rows if row[3] == hour]
    assert late[4:] == (10.0, 100.0, pytest.approx(130 / 3), 3)
    assert [row for row in rows if row[3] != hour] == next_hour


def test_running_again_changes_nothing(tenant_a, estate, hour):
    ingest(tenant_a, [at(hour, 0, 10), at(hour, 30, 20)])
    roll(tenant_a)
    before = rollups(tenant_a)
    assert roll(tenant_a) == {"hours": 0, "rollups": 0}
    with tenant_scope(tenant_a.id):
        window = services.telemetry_rollup_window(
            tenant=tenant_a, start=hour - dt.timedelta(hours=2), end=hour + dt.timedelta(hours=2)
        )
    assert window == {"hours": 4, "rollups": 1}
    assert rollups(tenant_a) == before


def test_a_re_sent_batch_leaves_the_rollups_as_they_were(tenant_a, estate, hour):
    batch = [at(hour, 0, 10), at(hour, 30, 20)]
    ingest(tenant_a, batch)
    roll(tenant_a)
    before = rollups(tenant_a)
    assert ingest(tenant_a, batch).inserted == 0
    roll(tenant_a)
    assert rollups(tenant_a) == before


def test_a_marker_written_during_a_run_survives_for_the_next_run(
    tenant_a, estate, hour, monkeypatch
):
    ingest(tenant_a, [at(hour, 0, 10)])
    store = sample_store()
    original = type(store).rollup_hour
    late_hour = hour + dt.timedelta(hours=1)

    def rollup_while_a_batch_lands(self, **kwargs):
        # A batch that commits while the rollup runs adds its own marker.
        TelemetryDirtyHour.objects.create(tenant=tenant_a, hour=late_hour)
        return original(self, **kwargs)

    monkeypatch.setattr(type(store), "rollup_hour", rollup_while_a_batch_lands)
    with tenant_scope(tenant_a.id):
        services.telemetry_rollup_pending(tenant=tenant_a)
    assert dirty_hours(tenant_a) == {late_hour}


def test_each_tenant_rolls_up_its_own_hours(tenant_a, tenant_b, estate, hour):
    ingest(tenant_a, [at(hour, 0, 10)])
    ingest(tenant_b, [at(hour, 0, 99, resource="compute:borealis-gpu-01")])
    roll(tenant_a)
    assert [row[4] for row in rollups(tenant_a)] == [10.0]
    assert rollups(tenant_b) == []
    assert dirty_hours(tenant_b) == {hour}
    roll(tenant_b)
    assert [row[4] for row in rollups(tenant_b)] == [99.0]
    assert [row[4] for row in rollups(tenant_a)] == [10.0]


def test_the_fleet_task_fans_out_to_tenants_with_pending_hours(
    tenant_a, tenant_b, estate, hour, monkeypatch
):
    ingest(tenant_b, [at(hour, 0, 99, resource="compute:borealis-gpu-01")])
    sent = record_fan_out(monkeypatch)
    assert tasks.rollup_fleet.apply().get() == 1
    assert sent == [{"task": tasks.rollup_tenant.name, "tenant_ids": [tenant_b.id]}]


def test_a_vanished_tenant_is_skipped(db):
    assert tasks.rollup_tenant.apply(kwargs={"tenant_id": 987654}).get() is None


def test_the_beat_schedule_names_registered_tasks():
    from celery import current_app

    names = {entry["task"] for entry in TELEMETRY_BEAT_SCHEDULE.values()}
    assert names == {
        tasks.rollup_fleet.name,
        tasks.retention_fleet.name,
        tasks.partitions_ensure.name,
        tasks.gpus_discover_fleet.name,
    }
    assert names <= set(current_app.tasks)


def test_an_hour_past_the_retention_keeps_its_rollup(tenant_a, estate):
    old_hour = (timezone.now() - dt.timedelta(days=31)).replace(minute=0, second=0, microsecond=0)
    node = estate["node"].pk
    with tenant_scope(tenant_a.id):
        TelemetryRollup.objects.create(
            tenant=tenant_a,
            resource_kind=COMPUTE,
            resource_id=node,
            metric=code("gpu_utilization"),
            bucket=old_hour,
            min_value=1,
            max_value=9,
            avg_value=5,
            sample_count=10,
            computed_at=old_hour,
        )
        # What retention left of the hour, and a marker for it.
        sample_store().insert_samples([(tenant_a.id, COMPUTE, node, 1, old_hour, 50.0)])
        TelemetryDirtyHour.objects.create(tenant=tenant_a, hour=old_hour)
        assert services.telemetry_rollup_pending(tenant=tenant_a) == {"hours": 0, "rollups": 0}
    assert rollups(tenant_a)[0][4:] == (1.0, 9.0, 5.0, 10)
    assert dirty_hours(tenant_a) == set()
