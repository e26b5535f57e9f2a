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
