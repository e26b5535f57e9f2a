"""Migration telemetry 0011 moves stored samples between the series and the resource block
layouts without losing, doubling or leaking one (PostgreSQL; run inside the test's
transaction, so the DDL is rolled back with it)."""

from __future__ import annotations

import datetime as dt
import importlib
from types import SimpleNamespace

import pytest
from django.db import connection, transaction

from operations.telemetry.storage import sample_store
from tenants.scoping import tenant_scope
from tests.conftest import requires_postgres
from tests.telemetry.helpers import stored

pytestmark = [pytest.mark.django_db, requires_postgres]

relayout = importlib.import_module("operations.telemetry.migrations.0011_resource_blocks")
DAY = dt.datetime(2026, 11, 20, 23, 40, tzinfo=dt.UTC)


def block_rows(tenant) -> list[tuple]:
    with tenant_scope(tenant.id), connection.cursor() as cursor:
        cursor.execute("SELECT resource_id, ts_start, cardinality(ts) FROM telemetry_sample_block")
        return sorted(cursor.fetchall())


def test_samples_survive_the_move_both_ways(tenant_a, tenant_b, estate):
    node, idle, foreign = estate["node"].pk, estate["idle"].pk, estate["foreign"].pk
    # Two resources × two metrics over two hours (and days) for A, one series for B.
    for tenant, resources in ((tenant_a, (node, idle)), (tenant_b, (foreign,))):
        rows = [
            (tenant.id, 1, resource, metric, DAY + dt.timedelta(minutes=m), float(m * metric))
            for resource in resources
            for metric in ((1, 4) if tenant is tenant_a else (1,))
            for m in range(0, 40, 5)
        ]
        with tenant_scope(tenant.id), transaction.atomic():
            sample_store().insert_samples(rows)
    before = {tenant.id: stored(tenant) for tenant in (tenant_a, tenant_b)}
    assert len(before[tenant_a.id]) == 32
    editor = SimpleNamespace(connection=connection)

    relayout.to_series_blocks(None, editor)
    # One block per series and hour: 2 resources × 2 metrics × 2 hours.
    assert len(block_rows(tenant_a)) == 8
    assert {tenant.id: stored(tenant) for tenant in (tenant_a, tenant_b)} == before

    relayout.to_resource_blocks(None, editor)
    assert block_rows(tenant_a) == sorted(
        (resource, start, n)
        for resource in (node, idle)
        for start, n in ((DAY, 8), (DAY + dt.timedelta(minutes=20), 8))
    )
    assert {tenant.id: stored(tenant) for tenant in (tenant_a, tenant_b)} == before
    # The moved blocks still take part in the overlap check: a re-send stores nothing.
    with tenant_scope(tenant_a.id), transaction.atomic():
        again = [(tenant_a.id, 1, node, 4, DAY + dt.timedelta(minutes=m), 0.0) for m in (0, 25)]
        assert sample_store().insert_samples(again) == 0
    # Every partition made by the move has its forced row-level security.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT bool_and(c.relrowsecurity AND c.relforcerowsecurity), count(*) "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'telemetry_sample_block'::regclass"
        )
        assert cursor.fetchone() == (True, 2)
