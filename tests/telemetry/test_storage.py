"""The storage interface: the same behaviour on both stores, and PostgreSQL's own machinery
(partitions, the COPY staging table, row-level security under raw SQL)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DatabaseError, connection, transaction

from operations.telemetry.storage import (
    PostgresSampleStore,
    SQLiteSampleStore,
    partition_name,
    sample_store,
)
from tenants.scoping import tenant_scope
from tests.conftest import requires_postgres
from tests.telemetry.helpers import stored

pytestmark = pytest.mark.django_db

DAY = dt.datetime(2026, 11, 20, 23, 30, tzinfo=dt.UTC)


def rows_for(tenant, resource_id, minutes, value=1.0):
    return [
        (tenant.id, 1, resource_id, 1, DAY + dt.timedelta(minutes=m), value + m) for m in minutes
    ]


def insert(tenant, rows):
    with tenant_scope(tenant.id), transaction.atomic():
        return sample_store().insert_samples(rows)


def test_the_store_matches_the_database(db):
    expected = PostgresSampleStore if connection.vendor == "postgresql" else SQLiteSampleStore
    assert isinstance(sample_store(), expected)


def test_only_new_rows_are_counted_and_the_first_value_stays(tenant_a, estate):
    node = estate["node"].pk
    assert insert(tenant_a, rows_for(tenant_a, node, [0, 1, 2])) == 3
    assert insert(tenant_a, rows_for(tenant_a, node, [1, 2, 3], value=50.0)) == 1
    assert [row[4] for row in stored(tenant_a)] == [1.0, 2.0, 3.0, 53.0]


def test_several_batches_share_one_transaction(tenant_a, estate):
    node = estate["node"].pk
    with tenant_scope(tenant_a.id), transaction.atomic():
        store = sample_store()
        assert store.insert_samples(rows_for(tenant_a, node, [0, 1])) == 2
        # The staging table starts empty for the second batch: nothing is inserted twice.
        assert store.insert_samples(rows_for(tenant_a, node, [1, 2])) == 1
        assert store.insert_samples(rows_for(tenant_a, node, [2, 2, 3])) == 1
    assert len(stored(tenant_a)) == 4


def test_an_empty_batch_is_nothing(tenant_a):
    assert insert(tenant_a, []) == 0


@requires_postgres
def test_daily_partitions_are_made_for_the_days_a_batch_touches(tenant_a, estate):
    insert(tenant_a, rows_for(tenant_a, estate["node"].pk, [0, 60]))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, relrowsecurity, relforcerowsecurity, "
            "EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = pg_class.oid) "
            "FROM pg_class WHERE relname = ANY(%s) ORDER BY relname",
            [[partition_name(DAY.date()), partition_name(DAY.date() + dt.timedelta(days=1))]],
        )
        assert cursor.fetchall() == [
            ("telemetry_sample_p20261120", True, True, True),
            ("telemetry_sample_p20261121", True, True, True),
        ]
    assert [name for name, _day in sample_store().partitions()][-2:] == [
        "telemetry_sample_p20261120",
        "telemetry_sample_p20261121",
    ]


@requires_postgres
def test_rows_go_through_the_session_staging_table(tenant_a, estate):
    insert(tenant_a, rows_for(tenant_a, estate["node"].pk, [0]))
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('pg_temp.telemetry_sample_staging') IS NOT NULL")
        assert cursor.fetchone()[0] is True
        # Still holding the batch inside the (test's) transaction; ON COMMIT DELETE ROWS.
        cursor.execute("SELECT count(*) FROM pg_temp.telemetry_sample_staging")
        assert cursor.fetchone()[0] == 1


@requires_postgres
def test_row_level_security_refuses_rows_of_another_tenant(tenant_a, tenant_b, estate):
    rows = rows_for(tenant_b, estate["foreign"].pk, [0])
    with pytest.raises(DatabaseError, match="row-level security"):
        insert(tenant_a, rows)
    assert stored(tenant_b) == []


@requires_postgres
def test_raw_sql_and_partitions_read_directly_see_only_the_scope(tenant_a, tenant_b, estate):
    insert(tenant_a, rows_for(tenant_a, estate["node"].pk, [0, 1]))
    insert(tenant_b, rows_for(tenant_b, estate["foreign"].pk, [0, 1, 2]))
    partition = partition_name(DAY.date())
    with tenant_scope(tenant_a.id), connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT tenant_id FROM telemetry_sample")
        assert cursor.fetchall() == [(tenant_a.id,)]
        cursor.execute(f"SELECT count(*), min(tenant_id) FROM {partition}")  # noqa: S608
        assert cursor.fetchone() == (2, tenant_a.id)
    with connection.cursor() as cursor:
        # No scope at all: nothing, through the parent or a partition.
        cursor.execute(f"SELECT count(*) FROM {partition}")  # noqa: S608
        assert cursor.fetchone()[0] == 0
