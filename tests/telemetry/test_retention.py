"""Retention: old raw samples go (per-tenant override respected), rollups stay longer, and on
PostgreSQL whole partitions past the longest retention are dropped."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction
from django.utils import timezone

from operations.telemetry import services, tasks
from operations.telemetry.models import TelemetryRollup
from operations.telemetry.storage import partition_name, sample_store
from tenants.scoping import tenant_scope
from tests.conftest import requires_postgres
from tests.fleet import record_fan_out
from tests.telemetry.helpers import code, rollups, stored

pytestmark = pytest.mark.django_db

UTIL = code("gpu_utilization")


def days_ago(days: float) -> dt.datetime:
    return (timezone.now() - dt.timedelta(days=days)).replace(microsecond=0)


def put_samples(tenant, resource_id, ages_in_days):
    """Store samples directly (ingest refuses times past the retention)."""
    rows = [(tenant.id, 1, resource_id, UTIL, days_ago(age), float(age)) for age in ages_in_days]
    with tenant_scope(tenant.id), transaction.atomic():
        sample_store().insert_samples(rows)


def put_rollups(tenant, resource_id, ages_in_days):
    with tenant_scope(tenant.id):
        for age in ages_in_days:
            TelemetryRollup.objects.create(
                tenant=tenant,
                resource_kind=1,
                resource_id=resource_id,
                metric=UTIL,
                bucket=days_ago(age).replace(minute=0, second=0),
                min_value=age,
                max_value=age,
                avg_value=age,
                sample_count=1,
                computed_at=timezone.now(),
            )


def enforce(tenant) -> dict:
    return tasks.retention_tenant.apply(kwargs={"tenant_id": tenant.id}).get()


def ages_of(tenant) -> list[float]:
    return sorted(row[4] for row in stored(tenant))


@pytest.fixture
def data(tenant_a, tenant_b, estate):
    for tenant, node in ((tenant_a, estate["node"]), (tenant_b, estate["foreign"])):
        put_samples(tenant, node.pk, [45, 31, 20, 9, 1])
        put_rollups(tenant, node.pk, [500, 399, 45, 1])


def test_the_default_keeps_30_days_of_samples_and_400_of_rollups(tenant_a, tenant_b, data):
    assert enforce(tenant_a) == {"samples": 2, "rollups": 1}
    assert ages_of(tenant_a) == [1.0, 9.0, 20.0]
    assert sorted(row[4] for row in rollups(tenant_a)) == [1.0, 45.0, 399.0]
    # Tenant B's rows are untouched by A's run.
    assert ages_of(tenant_b) == [1.0, 9.0, 20.0, 31.0, 45.0]
    assert len(rollups(tenant_b)) == 4


def test_a_tenants_override_is_respected(tenant_a, tenant_b, data):
    with tenant_scope(tenant_b.id):
        services.telemetry_policy_update(
            tenant=tenant_b, raw_retention_days=7, rollup_retention_days=60
        )
    enforce(tenant_a)
    enforce(tenant_b)
    assert ages_of(tenant_a) == [1.0, 9.0, 20.0]
    assert ages_of(tenant_b) == [1.0]
    assert sorted(row[4] for row in rollups(tenant_b)) == [1.0, 45.0]


def test_a_longer_override_keeps_more(tenant_a, data):
    with tenant_scope(tenant_a.id):
        services.telemetry_policy_update(tenant=tenant_a, raw_retention_days=40)
    enforce(tenant_a)
    assert ages_of(tenant_a) == [1.0, 9.0, 20.0, 31.0]


def test_deletes_run_in_batches(tenant_a, estate):
    put_samples(tenant_a, estate["node"].pk, [40, 41, 42, 43, 44, 2])
    with tenant_scope(tenant_a.id):
        result = services.telemetry_retention_enforce(tenant=tenant_a, batch=2)
    assert result["samples"] == 5
    assert ages_of(tenant_a) == [2.0]


def test_the_fleet_task_enforces_every_tenant(tenant_a, tenant_b, data, monkeypatch):
    sent = record_fan_out(monkeypatch)
    result = tasks.retention_fleet.apply().get()
    assert result["tenants"] == 2
    assert sent == [{"task": tasks.retention_tenant.name, "tenant_ids": [tenant_a.id, tenant_b.id]}]


def _partitions() -> set[str]:
    return {name for name, _day in sample_store().partitions()}


@requires_postgres
def test_partitions_past_the_longest_retention_are_dropped(tenant_a, tenant_b, data, monkeypatch):
    record_fan_out(monkeypatch)
    old, kept = partition_name(days_ago(45).date()), partition_name(days_ago(31).date())
    assert {old, kept} <= _partitions()
    with tenant_scope(tenant_b.id):
        # The longest retention in force decides: 40 days keeps the 31-day-old partition.
        services.telemetry_policy_update(tenant=tenant_b, raw_retention_days=40)
    result = tasks.retention_fleet.apply().get()
    assert result["dropped_partitions"] == [old]
    assert old not in _partitions()
    assert kept in _partitions()
    assert ages_of(tenant_a) == [1.0, 9.0, 20.0, 31.0]
    assert ages_of(tenant_b) == [1.0, 9.0, 20.0, 31.0]
    # Rollups are not in the partitions: still all there.
    assert len(rollups(tenant_a)) == 4


@requires_postgres
def test_partitions_are_made_ahead_with_forced_row_level_security(db):
    made = tasks.partitions_ensure.apply().get()
    today = timezone.now().date()
    expected = {partition_name(today + dt.timedelta(days=offset)) for offset in (-1, 0, 1, 2)}
    assert set(made) == expected
    assert tasks.partitions_ensure.apply().get() == []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname = ANY(%s) "
            "AND relrowsecurity AND relforcerowsecurity "
            "AND EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = pg_class.oid)",
            [sorted(expected)],
        )
        assert {row[0] for row in cursor.fetchall()} == expected


def test_sqlite_has_no_partitions_to_make_or_drop(db):
    if connection.vendor != "sqlite":
        pytest.skip("the portable store only")
    assert tasks.partitions_ensure.apply().get() == []
    assert services.telemetry_partitions_drop_expired() == []
