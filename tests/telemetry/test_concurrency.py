"""Concurrent ingest on PostgreSQL: real transactions in threads, each on its own connection
(as the app's ordinary role, so row-level security is in force)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from operations.telemetry import services
from operations.telemetry.storage import sample_store
from tenants.scoping import tenant_scope
from tests.concurrency import run_together
from tests.conftest import requires_postgres
from tests.telemetry.helpers import iso, minutes_ago, stored

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def drop_partitions():
    """The sample table is unmanaged: Django's flush leaves it (and its partitions) alone."""
    yield
    with connection.cursor() as cursor:
        for name, _day in sample_store().partitions():
            cursor.execute(f"DROP TABLE {name}")


def test_the_same_samples_sent_at_once_in_any_order_are_stored_once(tenant_a, estate):
    start = minutes_ago(120)
    samples = [
        {
            "resource": "compute:acme-gpu-sat-01",
            "metric": "gpu_utilization",
            "ts": iso(start + dt.timedelta(seconds=10 * i)),
            "value": float(i % 100),
        }
        for i in range(600)
    ]

    def ingest(index: int) -> int:
        batch = samples if index % 2 == 0 else samples[::-1]
        with tenant_scope(tenant_a.id):
            return services.telemetry_ingest_batch(tenant=tenant_a, samples=batch).inserted

    inserted = run_together(4, ingest)
    assert sum(inserted) == len(samples)
    assert len(stored(tenant_a)) == len(samples)


def test_a_new_gpu_scraped_at_once_is_learned_and_audited_once(tenant_a, estate):
    from operations.inventory.models import GpuDevice
    from operations.telemetry.prometheus import parse_exposition, telemetry_ingest_series
    from tenants.models import AuditEvent

    host = 'Hostname="acme-gpu-sat-01"'
    series, _ignored = parse_exposition(
        "".join(
            f'DCGM_FI_DEV_GPU_UTIL{{gpu="{i}",UUID="GPU-00000000-0000-4000-8000-0000000000c{i}",'
            f"{host}}} {i}\n"
            for i in range(3)
        )
    )
    moment = minutes_ago(1)

    def ingest(_index: int) -> int:
        with tenant_scope(tenant_a.id):
            result = telemetry_ingest_series(tenant=tenant_a, series=series, default_ts=moment)
            return result.learned_gpus

    run_together(4, ingest)
    with tenant_scope(tenant_a.id):
        assert GpuDevice.objects.filter(compute=estate["node"]).count() == 3
    learned = AuditEvent.objects.filter(
        tenant=tenant_a, object_type="inventory.GpuDevice", action="create"
    )
    assert learned.count() == 3
    gpu_rows = [row for row in stored(tenant_a) if row[0] == 3]
    assert len(gpu_rows) == 3
