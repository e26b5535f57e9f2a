"""The storage interface: the same behaviour on both stores, and PostgreSQL's own machinery
(partitions, the COPY staging table, row-level security under raw SQL)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from operations.telemetry.storage import (
    BLOCK_TABLE,
    PostgresSampleStore,
    SQLiteSampleStore,
    block_insert_statement,
    group_blocks,
    partition_name,
    sample_store,
)
from tenants.scoping import tenant_scope
from tests.conftest import requires_postgres
from tests.telemetry.helpers import dirty_hours, rollups, stored

pytestmark = pytest.mark.django_db

DAY = dt.datetime(2026, 11, 20, 23, 30, tzinfo=dt.UTC)


def rows_for(tenant, resource_id, minutes, value=1.0, metric=1):
    return [
        (tenant.id, 1, resource_id, metric, DAY + dt.timedelta(minutes=m), value + m)
        for m in minutes
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
            ("telemetry_sample_block_p20261120", True, True, True),
            ("telemetry_sample_block_p20261121", True, True, True),
        ]
    assert [name for name, _day in sample_store().partitions()][-2:] == [
        "telemetry_sample_block_p20261120",
        "telemetry_sample_block_p20261121",
    ]


@requires_postgres
def test_rows_go_through_the_session_staging_table_as_blocks(tenant_a, estate):
    # Minutes 0 and 1 of one series share an hour: one block of two samples.
    insert(tenant_a, rows_for(tenant_a, estate["node"].pk, [0, 1]))
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('pg_temp.telemetry_block_staging') IS NOT NULL")
        assert cursor.fetchone()[0] is True
        # Still holding the batch inside the (test's) transaction; ON COMMIT DELETE ROWS.
        cursor.execute("SELECT count(*), sum(cardinality(ts)) FROM pg_temp.telemetry_block_staging")
        assert cursor.fetchone() == (1, 2)


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
        cursor.execute(
            f"SELECT sum(cardinality(ts)), min(tenant_id) FROM {partition}"  # noqa: S608
        )
        assert cursor.fetchone() == (2, tenant_a.id)
    with connection.cursor() as cursor:
        # No scope at all: nothing, through the parent or a partition.
        cursor.execute(f"SELECT count(*) FROM {partition}")  # noqa: S608
        assert cursor.fetchone()[0] == 0


def points(tenant, resource_id, start=DAY, end=DAY + dt.timedelta(hours=3)):
    with tenant_scope(tenant.id), transaction.atomic():
        return sample_store().series_points(
            tenant_id=tenant.id,
            kind=1,
            resource_id=resource_id,
            metric=1,
            start=start,
            end=end,
            limit=1000,
        )


def test_late_samples_fill_gaps_and_stored_ones_are_skipped_on_every_read(tenant_a, estate):
    node = estate["node"].pk
    assert insert(tenant_a, rows_for(tenant_a, node, [0, 2, 4])) == 3
    # Overlaps the stored samples in time: 1, 3 and 5 are new, 2 and 4 are stored already.
    assert insert(tenant_a, rows_for(tenant_a, node, [1, 2, 3, 4, 5], value=100.0)) == 3
    expected = [1.0, 101.0, 3.0, 103.0, 5.0, 105.0]
    assert [row[4] for row in stored(tenant_a)] == expected
    series = points(tenant_a, node)
    assert [value for _ts, value in series] == expected
    assert [ts for ts, _value in series] == [DAY + dt.timedelta(minutes=m) for m in range(6)]
    with tenant_scope(tenant_a.id), transaction.atomic():
        assert sample_store().rollup_hour(tenant_id=tenant_a.id, hour=DAY.replace(minute=0),
                                          now=DAY + dt.timedelta(hours=2)) == 1  # fmt: skip
    assert rollups(tenant_a)[0][4:] == (1.0, 105.0, sum(expected) / 6, 6)
    # Sending both batches again changes nothing anywhere.
    assert insert(tenant_a, rows_for(tenant_a, node, [0, 2, 4])) == 0
    assert insert(tenant_a, rows_for(tenant_a, node, [1, 2, 3, 4, 5], value=7.0)) == 0
    assert [row[4] for row in stored(tenant_a)] == expected
    assert points(tenant_a, node) == series


def test_duplicates_within_a_batch_keep_the_first(tenant_a, estate):
    node = estate["node"].pk
    rows = rows_for(tenant_a, node, [0, 1]) + rows_for(tenant_a, node, [0], value=50.0)
    assert insert(tenant_a, rows) == 2
    assert [row[4] for row in stored(tenant_a)] == [1.0, 2.0]


def test_retention_cuts_exactly_at_the_cutoff_inside_an_hour(tenant_a, estate):
    node = estate["node"].pk
    insert(tenant_a, rows_for(tenant_a, node, range(10)))
    cutoff = DAY + dt.timedelta(minutes=5)
    with tenant_scope(tenant_a.id), transaction.atomic():
        removed = sample_store().delete_samples_before(tenant_id=tenant_a.id, cutoff=cutoff,
                                                       batch=100)  # fmt: skip
    assert removed == 5
    assert [ts for ts, _value in points(tenant_a, node)] == [
        DAY + dt.timedelta(minutes=m) for m in range(5, 10)
    ]
    assert [row[4] for row in stored(tenant_a)] == [6.0, 7.0, 8.0, 9.0, 10.0]


@requires_postgres
def test_a_batch_is_stored_as_one_block_per_resource_and_hour(tenant_a, estate):
    node, idle = estate["node"].pk, estate["idle"].pk
    # 23:30 to 00:29 the next day, two metrics of two resources: two hours (and days) each.
    rows = [
        (tenant_a.id, 1, resource, metric, DAY + dt.timedelta(minutes=m), float(m))
        for resource in (node, idle)
        for metric in (4, 1)
        for m in range(60)
    ]
    assert insert(tenant_a, rows) == 240
    with tenant_scope(tenant_a.id), connection.cursor() as cursor:
        cursor.execute(
            "SELECT resource_id, ts_start, ts_end, metrics, ts, vals "
            "FROM telemetry_sample_block ORDER BY 1, 2"
        )
        blocks = [
            (resource, start, end, sorted(zip(metrics, ts, vals, strict=True)))
            for resource, start, end, metrics, ts, vals in cursor.fetchall()
        ]
    midnight = DAY + dt.timedelta(minutes=30)
    # One row holds every metric of the resource (three parallel arrays).
    assert blocks == [
        (
            resource,
            start,
            start + dt.timedelta(minutes=29),
            [
                (metric, start + dt.timedelta(minutes=m), float(m + (start - DAY).seconds // 60))
                for metric in (1, 4)
                for m in range(30)
            ],
        )
        for resource in sorted((node, idle))
        for start in (DAY, midnight)
    ]


@requires_postgres
def test_a_scrape_stores_one_row_per_resource_not_per_series(tenant_a, estate):
    # The PostgreSQL cost of ingest is per row: a scrape of 3 resources × 8 metrics is 3 rows.
    resources = [estate["node"].pk, estate["idle"].pk, estate["deployment"].pk]
    rows = [
        (tenant_a.id, 1, resource, metric, DAY, float(metric))
        for resource in resources
        for metric in range(1, 9)
    ]
    assert insert(tenant_a, rows) == 24
    with tenant_scope(tenant_a.id), connection.cursor() as cursor:
        cursor.execute("SELECT count(*), sum(cardinality(ts)) FROM telemetry_sample_block")
        assert cursor.fetchone() == (3, 24)
    assert len(stored(tenant_a)) == 24
    assert insert(tenant_a, rows) == 0


def test_another_metric_of_a_stored_instant_is_new_and_each_is_read_once(tenant_a, estate):
    # Metrics of one instant sent in two batches (one JSON request per metric): the second
    # overlaps the first block of the resource in time, yet holds no stored sample.
    node = estate["node"].pk
    first = [(tenant_a.id, 1, node, 1, DAY + dt.timedelta(minutes=m), 10.0 + m) for m in (0, 1)]
    second = [(tenant_a.id, 1, node, 4, DAY + dt.timedelta(minutes=m), 40.0 + m) for m in (0, 1)]
    assert insert(tenant_a, first) == 2
    assert insert(tenant_a, second + first[:1]) == 2
    assert insert(tenant_a, first + second) == 0
    assert [(row[2], row[4]) for row in stored(tenant_a)] == [
        (1, 10.0),
        (1, 11.0),
        (4, 40.0),
        (4, 41.0),
    ]
    assert [value for _ts, value in points(tenant_a, node)] == [10.0, 11.0]
    with tenant_scope(tenant_a.id), transaction.atomic():
        store = sample_store()
        assert store.rollup_hour(tenant_id=tenant_a.id, hour=DAY.replace(minute=0),
                                 now=DAY + dt.timedelta(hours=2)) == 2  # fmt: skip
        last = store.last_sample_times(
            tenant_id=tenant_a.id,
            series=[(1, node, 1), (1, node, 4), (1, node, 5)],
            since=DAY,
            until=DAY + dt.timedelta(minutes=30),
        )
    assert sorted(last) == [(1, node, metric, DAY + dt.timedelta(minutes=1)) for metric in (1, 4)]
    assert [row[2:] for row in rollups(tenant_a)] == [
        (1, DAY.replace(minute=0), 10.0, 11.0, 10.5, 2),
        (4, DAY.replace(minute=0), 40.0, 41.0, 40.5, 2),
    ]


def test_the_last_sample_of_a_metric_the_resource_no_longer_sends(tenant_a, estate):
    # The resource's newer blocks (a later hour) hold other metrics only.
    node = estate["node"].pk
    insert(
        tenant_a, [(tenant_a.id, 1, node, 1, DAY + dt.timedelta(minutes=m), 1.0) for m in (0, 5)]
    )
    insert(
        tenant_a, [(tenant_a.id, 1, node, 4, DAY + dt.timedelta(minutes=m), 1.0) for m in (6, 40)]
    )
    with tenant_scope(tenant_a.id), transaction.atomic():
        last = sample_store().last_sample_times(
            tenant_id=tenant_a.id,
            series=[(1, node, 1), (1, node, 4)],
            since=DAY,
            until=DAY + dt.timedelta(minutes=41),
        )
        # ``until`` inside the resource's newest block, before its sample of the metric.
        early = sample_store().last_sample_times(
            tenant_id=tenant_a.id,
            series=[(1, node, 4)],
            since=DAY,
            until=DAY + dt.timedelta(minutes=39),
        )
    assert sorted(last) == [
        (1, node, 1, DAY + dt.timedelta(minutes=5)),
        (1, node, 4, DAY + dt.timedelta(minutes=40)),
    ]
    assert early == [(1, node, 4, DAY + dt.timedelta(minutes=6))]


def test_retention_keeps_a_block_that_starts_with_a_doomed_one(tenant_a, estate):
    # Two blocks of one resource starting at the same instant (another metric sent later):
    # one ends before the cutoff, the other after it and is only trimmed.
    node = estate["node"].pk
    insert(tenant_a, [(tenant_a.id, 1, node, 1, DAY, 1.0)])
    insert(
        tenant_a,
        [(tenant_a.id, 1, node, 4, DAY + dt.timedelta(minutes=m), 2.0 + m) for m in (0, 9)],
    )
    cutoff = DAY + dt.timedelta(minutes=5)
    with tenant_scope(tenant_a.id), transaction.atomic():
        removed = sample_store().delete_samples_before(tenant_id=tenant_a.id, cutoff=cutoff,
                                                       batch=1)  # fmt: skip
    assert removed == 1
    with tenant_scope(tenant_a.id), transaction.atomic():
        removed = sample_store().delete_samples_before(tenant_id=tenant_a.id, cutoff=cutoff,
                                                       batch=1)  # fmt: skip
    assert removed == 1
    assert [(row[2], row[3], row[4]) for row in stored(tenant_a)] == [
        (4, DAY + dt.timedelta(minutes=9), 11.0)
    ]


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_ingest_transactions_do_not_wait_for_the_wal_flush(tenant_a, estate):
    try:
        _ingest_and_show_synchronous_commit(tenant_a, estate)
    finally:
        # Real commits here: the unmanaged block table is not flushed between tests.
        with connection.cursor() as cursor:
            for name, _day in sample_store().partitions():
                cursor.execute(f"DROP TABLE {name}")


def _ingest_and_show_synchronous_commit(tenant_a, estate):
    with tenant_scope(tenant_a.id), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"
        sample_store().insert_samples(rows_for(tenant_a, estate["node"].pk, [0]))
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "off"
    with connection.cursor() as cursor:
        # SET LOCAL: the next transactions of the connection are not affected.
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


def test_instants_and_values_come_back_exactly(tenant_a, estate):
    node = estate["node"].pk
    plus_two = dt.timezone(dt.timedelta(hours=2))
    moments = [
        DAY + dt.timedelta(microseconds=1),
        DAY + dt.timedelta(minutes=7, seconds=3, microseconds=999_999),
        # Given with another offset: the same instant, filed under its UTC hour.
        (DAY + dt.timedelta(minutes=20)).astimezone(plus_two),
        dt.datetime(1999, 12, 31, 23, 59, 59, 500_000, tzinfo=dt.UTC),  # before PG's epoch
    ]
    values = [0.1, -1234.5, 1e300, 7]
    rows = [(tenant_a.id, 1, node, 1, ts, v) for ts, v in zip(moments, values, strict=True)]
    assert insert(tenant_a, rows) == 4
    assert stored(tenant_a) == sorted(
        (1, node, 1, ts.astimezone(dt.UTC), float(v)) for ts, v in zip(moments, values, strict=True)
    )
    assert insert(tenant_a, rows) == 0


@requires_postgres
def test_the_insert_marks_only_the_hours_that_received_samples(tenant_a, estate):
    node = estate["node"].pk
    insert(tenant_a, rows_for(tenant_a, node, [0]))  # 23:30, unmarked: a plain insert
    rows = rows_for(tenant_a, node, [0, 40])  # 23:30 is stored already; 00:10 is new
    with tenant_scope(tenant_a.id), transaction.atomic():
        assert sample_store().insert_blocks(group_blocks(rows), mark_dirty_hours=True) == 1
    assert dirty_hours(tenant_a) == {DAY.replace(minute=0) + dt.timedelta(hours=1)}


@requires_postgres
def test_a_block_across_an_hour_is_refused(tenant_a, estate):
    # Reads and the overlap check rely on it: the table's CHECK guards it.
    sample_store().ensure_partitions([DAY.date()])
    start, end = DAY + dt.timedelta(minutes=20), DAY + dt.timedelta(minutes=40)  # 23:50, 00:10
    with (
        tenant_scope(tenant_a.id),
        pytest.raises(IntegrityError, match="block_arrays"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO telemetry_sample_block (tenant_id, resource_kind, resource_id, "
            "ts_start, ts_end, metrics, ts, vals) VALUES (%s, 1, %s, %s, %s, '{1,1}', %s, %s)",
            [tenant_a.id, estate["node"].pk, start, end, [start, end], [1.0, 2.0]],
        )


def _blocks_read_by_the_fresh_block_insert(
    tenant, resource_id: int, minute: int, metric: int = 1
) -> int:
    """Stored blocks the insert of one fresh sample at ``minute`` reads (rows returned or
    filtered out by every scan of the block table), from its EXPLAIN ANALYZE; rolled back."""
    store = sample_store()
    blocks = group_blocks(rows_for(tenant, resource_id, [minute], metric=metric))

    def read(node) -> int:
        found = 0
        if "Scan" in node["Node Type"] and node.get("Relation Name", "").startswith(BLOCK_TABLE):
            found += node["Actual Rows"] * node["Actual Loops"]
            found += node.get("Rows Removed by Filter", 0) + node.get(
                "Rows Removed by Index Recheck", 0
            )
        return found + sum(read(child) for child in node.get("Plans", ()))

    class Undo(Exception):
        pass

    try:
        with transaction.atomic():
            connection.ensure_connection()
            with connection.connection.cursor() as cursor:
                target = store.stage_blocks(cursor, blocks)
                # The question is which index the check descends, not whether a sequential
                # scan of a small test partition would be cheaper.
                cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")
                cursor.execute(
                    "EXPLAIN (ANALYZE, FORMAT JSON) "
                    + block_insert_statement(mark_dirty_hours=True, target=target)
                )
                ((plan,),) = cursor.fetchall()
                found = read(plan[0]["Plan"])
            raise Undo
    except Undo:
        pass
    return found


@requires_postgres
def test_the_overlap_check_of_a_fresh_block_reads_no_block_stored_earlier_in_the_hour(
    tenant_a, estate
):
    # One block per scrape: 20 scrapes earlier in the hour (23:30 … 23:49), then a fresh one.
    node = estate["node"].pk
    for minute in range(20):
        insert(tenant_a, rows_for(tenant_a, node, [minute]))
    with tenant_scope(tenant_a.id):
        assert _blocks_read_by_the_fresh_block_insert(tenant_a, node, 25) == 0
        # Without the ts_end index (the index set before migration telemetry 0009) the check
        # walks the ts_start range: every block of the resource stored earlier in the hour.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DROP INDEX telemetry_sample_block_resource_end")
            assert _blocks_read_by_the_fresh_block_insert(tenant_a, node, 25) == 20
            transaction.set_rollback(True)
        assert _blocks_read_by_the_fresh_block_insert(tenant_a, node, 25) == 0


@requires_postgres
def test_another_metric_at_stored_instants_is_fresh_data(tenant_a, estate):
    # Remote write's shards split a resource's series between requests: a block of metric 4
    # over instants stored for metric 1 shares no sample with them. The overlap probe reads the
    # stored block and lets the new one in whole; it is not unnested against it (a second read).
    node = estate["node"].pk
    insert(tenant_a, rows_for(tenant_a, node, range(20)))
    with tenant_scope(tenant_a.id):
        assert _blocks_read_by_the_fresh_block_insert(tenant_a, node, 10, metric=4) == 1
        # The same instant of the stored metric: probed, then its stored pairs are read.
        assert _blocks_read_by_the_fresh_block_insert(tenant_a, node, 10, metric=1) == 2
