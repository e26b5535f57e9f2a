"""Where raw samples and rollups are written: the only code that knows the tables' SQL layout.

``sample_store()`` answers the store for the current database; both have the same interface.

PostgreSQL (:class:`PostgresSampleStore`): resource blocks
    Samples are stored in *blocks*: one row of ``telemetry_sample_block`` holds the samples of
    one resource (tenant, kind, resource), all its metrics, from one batch within one UTC hour,
    as three parallel arrays (``metrics``, ``ts``, ``vals``; in no particular order) with their
    first and last time (``ts_start``, ``ts_end``). The database's cost of ingest is per row
    (the heap, the row-level-security check, two index entries, the overlap probe: ~11 µs),
    not per sample: a dcgm-exporter scrape of 400 GPUs and 50 hosts × 8 metrics is 450 rows,
    where one row per series (migration telemetry 0003 to 0010) made it 3,600 and cost the
    database 4x the CPU; a per-sample primary key before that capped ingest near 0.13 of a
    bare COPY. A read of one series reads its resource's blocks and keeps its metric's samples.

    ``telemetry_sample`` is a view (``security_invoker``, so the caller's row-level security
    applies) that unnests the blocks into one row per sample: the ORM model and ad-hoc SQL
    read samples as before. The hot reads (series, rollups, retention) use the block columns
    so the index and partition pruning apply.

    Idempotency without a unique index: a sample's identity is (tenant, resource, metric, ts).
    A batch first takes transaction-level advisory locks on its resources (hashed into
    ``_LOCK_BUCKETS`` buckets per tenant, taken in ascending order, held to commit), then one
    statement inserts the blocks that overlap no stored block of their resource in time with a
    metric in common (the rule: fresh data; other metrics of the same instants, as remote
    write's shards send them, are fresh too) as they are, and unnests only the others (re-sent
    or late data) to drop the samples stored already; the same statement marks the hours that
    received samples for the rollup. Concurrent
    batches sharing a bucket wait for each other's commit, so each sees what the other
    stored: every read path (the view, series, rollups, retention) sees every sample once.
    Duplicates within a batch keep the first. One batch per transaction cannot deadlock on
    these locks; a transaction storing several batches (the demo, tests) could, against
    another doing the same, and PostgreSQL would then abort one of them.

    The resource index is (tenant, kind, resource, ``ts_start``): a block lies within one UTC
    hour, so the blocks reaching into [start, end) start in (start - 1 hour, end): a narrow
    range for series reads. The overlap check of ingest uses a second one ending in ``ts_end``:
    the blocks overlapping a new block end in [its start, its hour's end], none for fresh data,
    however many blocks the resource has gathered in the hour (one a scrape).

    ``telemetry_sample_block`` is range-partitioned by ``ts_start``, one partition per UTC day
    (``telemetry_sample_block_pYYYYMMDD``); a block lies within one UTC hour (a CHECK keeps it
    under an hour), so in one partition. Each partition gets the parent's forced RLS policy.
    Partitions are made and dropped through two ``SECURITY DEFINER`` functions (migration
    telemetry 0004), so they belong to the owner role even when the app runs as one that owns
    nothing.
    Retention drops whole partitions, and deletes (or trims) a tenant's blocks before its own
    cutoff.

    Ingest transactions run with ``synchronous_commit = off``: a commit returns before its WAL
    reaches the disk. A crash of the database server can lose the batches acknowledged in the
    last moments before it (at most about three ``wal_writer_delay``, 600 ms by default); it
    never corrupts or half-applies a batch. For telemetry, one lost scrape interval is an
    acceptable price for not waiting on a disk flush per request.

SQLite (:class:`SQLiteSampleStore`)
    One plain table with the same columns and primary key; ``INSERT OR IGNORE`` with
    executemany; retention deletes.

Raw SQL skips the fail-closed manager, so every statement here filters on ``tenant_id``
itself; on PostgreSQL row-level security applies underneath as everywhere else.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
import struct
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Min, QuerySet

from operations.telemetry.models import TelemetrySample
from tenants.scoping import advisory_lock_class, advisory_xact_lock

SAMPLE_TABLE = "telemetry_sample"  # a table on SQLite; on PostgreSQL a view over the blocks
BLOCK_TABLE = "telemetry_sample_block"
ROLLUP_TABLE = "telemetry_rollup"
STAGING_TABLE = "telemetry_block_staging"
COLUMNS = "tenant_id, resource_kind, resource_id, metric, ts, value"
BLOCK_COLUMNS = "tenant_id, resource_kind, resource_id, ts_start, ts_end, metrics, ts, vals"
# The staging table also carries each block's UTC hour: stored blocks that overlap a staged
# one lie in the same hour, so they start in [hour, ts_end], both bounds of the resource index.
STAGING_COLUMNS = f"{BLOCK_COLUMNS}, hour"
PARTITION_NAME = re.compile(rf"^{BLOCK_TABLE}_p(\d{{8}})$")
# Serialises partition DDL between concurrent batches (an advisory lock, tenants.scoping).
_PARTITION_LOCK = "telemetry.partitions"
# Advisory locks of series, as (class, bucket) pairs: a batch locks the buckets of its
# resources within its tenant. Two batches share a bucket only when they may share a series
# (or by a harmless hash collision: the second waits).
_SERIES_LOCK_CLASS = advisory_lock_class("telemetry.series")
_LOCK_BUCKETS = 64

#: (tenant_id, resource_kind, resource_id, metric code, ts (aware, UTC), value)
Row = tuple[int, int, int, int, dt.datetime, float]
#: (tenant_id, resource_kind, resource_id, metric code, UTC hour) → {ts: value}
Blocks = dict[tuple[int, int, int, int, dt.datetime], dict[dt.datetime, float]]
#: (resource id, lowest, highest, sample count, first ts, last ts) of one series over a window
WindowRow = tuple[int, float, float, int, dt.datetime, dt.datetime]

DIRTY_HOUR_TABLE = "telemetry_dirty_hour"

_ROLLUP_UPSERT = f"""
    INSERT INTO {ROLLUP_TABLE} (tenant_id, resource_kind, resource_id, metric, bucket,
        min_value, max_value, avg_value, sample_count, computed_at)
    SELECT tenant_id, resource_kind, resource_id, metric, %s,
        MIN(value), MAX(value), AVG(value), COUNT(*), %s
    FROM {SAMPLE_TABLE}
    WHERE tenant_id = %s AND ts >= %s AND ts < %s
    GROUP BY tenant_id, resource_kind, resource_id, metric
    ON CONFLICT (tenant_id, resource_kind, resource_id, metric, bucket) DO UPDATE SET
        min_value = EXCLUDED.min_value, max_value = EXCLUDED.max_value,
        avg_value = EXCLUDED.avg_value, sample_count = EXCLUDED.sample_count,
        computed_at = EXCLUDED.computed_at
"""  # noqa: S608 - table names are constants

# A block never spans an hour: the blocks of an hour are those that start in it.
_BLOCK_ROLLUP_UPSERT = f"""
    INSERT INTO {ROLLUP_TABLE} (tenant_id, resource_kind, resource_id, metric, bucket,
        min_value, max_value, avg_value, sample_count, computed_at)
    SELECT b.tenant_id, b.resource_kind, b.resource_id, u.metric, %(hour)s,
        MIN(u.value), MAX(u.value), AVG(u.value), COUNT(*), %(now)s
    FROM {BLOCK_TABLE} b CROSS JOIN LATERAL unnest(b.metrics, b.vals) AS u(metric, value)
    WHERE b.tenant_id = %(tenant)s AND b.ts_start >= %(hour)s AND b.ts_start < %(end)s
    GROUP BY b.tenant_id, b.resource_kind, b.resource_id, u.metric
    ON CONFLICT (tenant_id, resource_kind, resource_id, metric, bucket) DO UPDATE SET
        min_value = EXCLUDED.min_value, max_value = EXCLUDED.max_value,
        avg_value = EXCLUDED.avg_value, sample_count = EXCLUDED.sample_count,
        computed_at = EXCLUDED.computed_at
"""  # noqa: S608 - table names are constants

_DELETE_SAMPLES_BATCH = f"""
    DELETE FROM {SAMPLE_TABLE}
    WHERE (tenant_id, resource_kind, resource_id, metric, ts) IN (
        SELECT tenant_id, resource_kind, resource_id, metric, ts FROM {SAMPLE_TABLE}
        WHERE tenant_id = %s AND ts < %s LIMIT %s
    )
"""  # noqa: S608 - table names are constants

# (resource, ts_start) may name several blocks (late data for other metrics of an instant):
# the delete repeats the cutoff, so it takes only whole blocks before it.
_DELETE_BLOCKS_BATCH = f"""
    WITH doomed AS (
        SELECT tenant_id, resource_kind, resource_id, ts_start FROM {BLOCK_TABLE}
        WHERE tenant_id = %(tenant)s AND ts_end < %(cutoff)s LIMIT %(batch)s
    ), gone AS (
        DELETE FROM {BLOCK_TABLE} b USING doomed d
        WHERE b.tenant_id = d.tenant_id AND b.resource_kind = d.resource_kind
            AND b.resource_id = d.resource_id AND b.ts_start = d.ts_start
            AND b.ts_end < %(cutoff)s
        RETURNING cardinality(b.ts) AS n
    )
    SELECT count(*), COALESCE(sum(n), 0) FROM gone
"""  # noqa: S608 - table names are constants
_STRADDLING = f"""
    FROM {BLOCK_TABLE}
    WHERE tenant_id = %(tenant)s AND ts_start < %(cutoff)s AND ts_end >= %(cutoff)s
"""  # noqa: S608 - table names are constants
_COUNT_TRIMMED = f"""
    SELECT COALESCE(sum((SELECT count(*) FROM unnest(ts) AS t WHERE t < %(cutoff)s)), 0)
    {_STRADDLING}
"""  # noqa: S608
# The three arrays keep their order (time, then metric): filtered by position.
_TRIM_STRADDLING = f"""
    UPDATE {BLOCK_TABLE} SET
        ts = ARRAY(SELECT u.t FROM unnest(ts) WITH ORDINALITY AS u(t, i)
                   WHERE u.t >= %(cutoff)s ORDER BY u.i),
        metrics = ARRAY(SELECT u.m FROM unnest(ts, metrics) WITH ORDINALITY AS u(t, m, i)
                        WHERE u.t >= %(cutoff)s ORDER BY u.i),
        vals = ARRAY(SELECT u.v FROM unnest(ts, vals) WITH ORDINALITY AS u(t, v, i)
                     WHERE u.t >= %(cutoff)s ORDER BY u.i),
        ts_start = (SELECT min(t) FROM unnest(ts) AS t WHERE t >= %(cutoff)s)
    WHERE tenant_id = %(tenant)s AND ts_start < %(cutoff)s AND ts_end >= %(cutoff)s
"""  # noqa: S608 - table names are constants

_BLOCK_SERIES = f"""
    SELECT u.ts, u.value
    FROM {BLOCK_TABLE} b CROSS JOIN LATERAL unnest(b.metrics, b.ts, b.vals) AS u(metric, ts, value)
    WHERE b.tenant_id = %(tenant)s AND b.resource_kind = %(kind)s
        AND b.resource_id = %(resource)s
        AND b.ts_start > %(start)s - interval '1 hour' AND b.ts_start < %(end)s
        AND b.ts_end >= %(start)s AND u.metric = %(metric)s
        AND u.ts >= %(start)s AND u.ts < %(end)s
    ORDER BY u.ts
    LIMIT %(limit)s
"""  # noqa: S608 - table names are constants

# The window of one metric per resource, reading only the blocks that overlap it (the resource
# index on ``ts_end``; partitions pruned on ``ts_start``: a block never spans an hour, so one
# overlapping the window starts less than an hour before it). ``{resources}``: an optional
# ``AND b.resource_id IN (subquery)``.
_BLOCK_WINDOW_STATS = f"""
    SELECT b.resource_id, min(u.value), max(u.value), count(*), min(u.ts), max(u.ts)
    FROM {BLOCK_TABLE} b
    CROSS JOIN LATERAL unnest(b.metrics, b.ts, b.vals) AS u(metric, ts, value)
    WHERE b.tenant_id = %s AND b.resource_kind = %s
        AND b.ts_end >= %s AND b.ts_start <= %s AND b.ts_start > %s
        AND u.metric = %s AND u.ts >= %s AND u.ts <= %s {{resources}}
    GROUP BY b.resource_id
    ORDER BY b.resource_id
"""  # noqa: S608 - table names are constants

# The last sample at or before ``until`` of each asked series (``unnest`` of three arrays),
# among blocks starting after ``from``: per series, an index probe for its resource's newest
# block holding a sample of the metric at or before ``until``, then the blocks of that block's
# UTC hour (late data may sit in a block that starts earlier in the hour and ends later; a
# block never spans an hour, so no later sample lies elsewhere). Cost per series, not per
# stored block: a scrape every 15 s reads no more than one every 5 min. (The hour is computed
# in the probe: under row-level security a function such as date_trunc, not leakproof, in the
# second scan's condition would be a filter after it, not an index bound.)
_BLOCK_LAST_SAMPLES = f"""
    SELECT s.kind, s.resource_id, s.metric, last.at
    FROM unnest(%(kinds)s::int2[], %(resources)s::int8[], %(metrics)s::int2[])
        AS s(kind, resource_id, metric)
    CROSS JOIN LATERAL (
        SELECT date_trunc('hour', b.ts_start, 'UTC') AS hour FROM {BLOCK_TABLE} b
        WHERE b.tenant_id = %(tenant)s AND b.resource_kind = s.kind
            AND b.resource_id = s.resource_id
            AND b.ts_start > %(from)s AND b.ts_start <= %(until)s
            AND EXISTS (SELECT FROM unnest(b.metrics, b.ts) AS u(metric, ts)
                        WHERE u.metric = s.metric AND u.ts <= %(until)s)
        ORDER BY b.ts_start DESC LIMIT 1
    ) AS newest
    CROSS JOIN LATERAL (
        SELECT max(u.ts) AS at
        FROM {BLOCK_TABLE} b CROSS JOIN LATERAL unnest(b.metrics, b.ts) AS u(metric, ts)
        WHERE b.tenant_id = %(tenant)s AND b.resource_kind = s.kind
            AND b.resource_id = s.resource_id
            AND b.ts_start >= newest.hour
            AND b.ts_start <= %(until)s
            AND u.metric = s.metric AND u.ts <= %(until)s
    ) AS last
    WHERE last.at >= %(since)s
"""  # noqa: S608 - the table name is a constant

_BLOCK_RESOURCES_REPORTING = f"""
    SELECT DISTINCT resource_kind, resource_id FROM {BLOCK_TABLE}
    WHERE tenant_id = %(tenant)s AND ts_start > %(from)s AND ts_end >= %(since)s
"""  # noqa: S608 - the table name is a constant

_STAGING_PREPARE = f"""
    CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} (tenant_id bigint,
        resource_kind smallint, resource_id bigint, ts_start timestamptz, ts_end timestamptz,
        metrics smallint[], ts timestamptz[], vals double precision[], hour timestamptz)
        ON COMMIT DELETE ROWS;
    DELETE FROM {STAGING_TABLE};
    SET LOCAL synchronous_commit = off;
    SELECT count(pg_advisory_xact_lock({_SERIES_LOCK_CLASS}, k))
        FROM unnest('{{{{{{locks}}}}}}'::int4[]) AS k;
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = '{BLOCK_TABLE}'::regclass
        AND c.relname = ANY('{{{{{{partitions}}}}}}'::text[])
"""  # noqa: S608 - constants, integers and partition names made here

# A block lies within one UTC hour, so one that overlaps a staged block starts in [its hour,
# its end] (the other days' partitions are skipped) and ends in [its start, its hour's end]:
# the ``ts_end`` index finds it in one descent, where the ``ts_start`` range would hold every
# block of the resource stored earlier in the hour.
# One statement, one snapshot: staged blocks that overlap no stored block of their resource
# sharing a metric go in whole (fresh data, the rule; a stored duplicate would be such a block:
# remote write's shards, which split a resource's series between requests, stay on this path);
# the samples of the others are looked up in the stored blocks that reach them, and those not
# stored yet go in, regrouped by resource and hour. Returns how many samples went in.
# ``{mark}`` is empty, or a further step that marks the hours that received samples for the
# rollup.
_BLOCK_INSERT = f"""
    WITH staged AS (
        SELECT s.*, EXISTS (
            SELECT 1 FROM {{target}} b
            WHERE b.tenant_id = s.tenant_id AND b.resource_kind = s.resource_kind
                AND b.resource_id = s.resource_id
                AND b.ts_end >= s.ts_start AND b.ts_end < s.hour + interval '1 hour'
                AND b.ts_start >= s.hour AND b.ts_start <= s.ts_end
                AND b.metrics && s.metrics
        ) AS clashes
        FROM {STAGING_TABLE} s
    ), whole AS (
        INSERT INTO {{target}} ({BLOCK_COLUMNS})
        SELECT {BLOCK_COLUMNS} FROM staged WHERE NOT clashes
        RETURNING tenant_id, ts_start, cardinality(ts) AS n
    ), unstored AS (
        -- Per clashing block, the (metric, instant) pairs stored in the blocks it overlaps
        -- (one index scan of its resource), then its samples not among them.
        SELECT s.tenant_id, s.resource_kind, s.resource_id, u.metric, u.ts, u.value
        FROM staged s
        CROSS JOIN LATERAL (
            SELECT array_agg(x.metric) AS metrics, array_agg(x.ts) AS instants
            FROM {BLOCK_TABLE} b CROSS JOIN LATERAL unnest(b.metrics, b.ts) AS x(metric, ts)
            WHERE b.tenant_id = s.tenant_id AND b.resource_kind = s.resource_kind
                AND b.resource_id = s.resource_id
                AND b.ts_end >= s.ts_start AND b.ts_end < s.hour + interval '1 hour'
                AND b.ts_start >= s.hour AND b.ts_start <= s.ts_end
                AND x.ts >= s.ts_start AND x.ts <= s.ts_end
        ) AS stored
        CROSS JOIN LATERAL unnest(s.metrics, s.ts, s.vals) AS u(metric, ts, value)
        WHERE s.clashes AND NOT EXISTS (
            SELECT FROM unnest(stored.metrics, stored.instants) AS y(metric, ts)
            WHERE y.metric = u.metric AND y.ts = u.ts
        )
    ), merged AS (
        INSERT INTO {BLOCK_TABLE} ({BLOCK_COLUMNS})
        SELECT tenant_id, resource_kind, resource_id, min(ts), max(ts),
            array_agg(metric ORDER BY ts, metric), array_agg(ts ORDER BY ts, metric),
            array_agg(value ORDER BY ts, metric)
        FROM unstored
        GROUP BY tenant_id, resource_kind, resource_id, date_trunc('hour', ts, 'UTC')
        RETURNING tenant_id, ts_start, cardinality(ts) AS n
    ){{mark}}
    SELECT (SELECT COALESCE(sum(n), 0) FROM whole) + (SELECT COALESCE(sum(n), 0) FROM merged)
"""  # noqa: S608 - table names are constants
_MARK_DIRTY_HOURS = f""", marked AS (
        INSERT INTO {DIRTY_HOUR_TABLE} (tenant_id, hour, marked_at)
        SELECT DISTINCT tenant_id, date_trunc('hour', ts_start, 'UTC'), statement_timestamp()
        FROM (SELECT tenant_id, ts_start FROM whole
              UNION ALL SELECT tenant_id, ts_start FROM merged) AS stored
    )"""  # noqa: S608 - table names are constants


@functools.lru_cache(maxsize=64)
def block_insert_statement(*, mark_dirty_hours: bool, target: str) -> str:
    """The insert statement; ``target``: the parent table, or the one day's partition that
    every staged block falls in (probed and filled directly: no partition routing or run-time
    pruning per block: about a quarter of the statement when a scrape's blocks held one sample
    each). Re-sent and late data (the rare path) always go through the parent."""
    return _BLOCK_INSERT.format(mark=_MARK_DIRTY_HOURS if mark_dirty_hours else "", target=target)


def partition_name(day: dt.date) -> str:
    return f"{BLOCK_TABLE}_p{day:%Y%m%d}"


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def group_blocks(rows: Iterable[Row]) -> Blocks:
    """Rows by (tenant, kind, resource, metric, UTC hour) → {ts: value}; the first of equal
    samples stays."""
    blocks: Blocks = {}
    hour_of: dict[dt.datetime, dt.datetime] = {}
    for tenant_id, kind, resource_id, metric, ts, value in rows:
        hour = hour_of.get(ts)
        if hour is None:
            hour = hour_of[ts] = ts.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        key = (tenant_id, kind, resource_id, metric, hour)
        block = blocks.get(key)
        if block is None:
            blocks[key] = {ts: value}
        elif ts not in block:
            block[ts] = value
    return blocks


# PostgreSQL's binary COPY format, written by hand for the staging table's columns: psycopg
# dumps array elements one by one in Python, which cost more than the rest of the insert.
# A timestamptz is int8 microseconds since 2000-01-01 UTC; a float8 is IEEE 754, big-endian.
_PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = b"\xff\xff"
_INT2_OID, _TIMESTAMPTZ_OID, _FLOAT8_OID = 21, 1184, 701
# Field count (9: STAGING_COLUMNS), then (length, value) of tenant_id int8, resource_kind
# int2, resource_id int8.
_ROW_START = struct.Struct(">hiqihiq")
# Length of the field, dimensions, has-nulls flag, element type, size, lower bound.
_ARRAY_START = struct.Struct(">iiiIii")
_INT2_ITEM = struct.Struct(">ih")
_TIMESTAMPTZ_ITEM = struct.Struct(">iq")
_FLOAT8_ITEM = struct.Struct(">id")


def _micros(moment: dt.datetime) -> int:
    delta = moment - _PG_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


#: (tenant_id, resource_kind, resource_id, UTC hour) → [(metric code, ts, value), ...]
ResourceBlocks = dict[tuple[int, int, int, dt.datetime], list[tuple[int, dt.datetime, float]]]


def group_resources(blocks: Blocks) -> ResourceBlocks:
    """The samples of ``blocks`` (one per series and hour) by resource and hour: the rows of
    ``telemetry_sample_block``."""
    resources: ResourceBlocks = {}
    for (tenant_id, kind, resource_id, metric, hour), block in blocks.items():
        key = (tenant_id, kind, resource_id, hour)
        samples = resources.get(key)
        if samples is None:
            samples = resources[key] = []
        if len(block) == 1:  # a scrape's usual block
            ((ts, value),) = block.items()
            samples.append((metric, ts, value))
        else:
            samples.extend([(metric, ts, value) for ts, value in block.items()])
    return resources


def encode_blocks(blocks: Blocks) -> bytes:
    """The binary COPY stream of ``blocks`` for the staging table (``STAGING_COLUMNS``)."""
    return encode_resources(group_resources(blocks))


def encode_resources(resources: ResourceBlocks) -> bytes:
    """The binary COPY stream of ``resources`` for the staging table (``STAGING_COLUMNS``): one
    row per resource and UTC hour, its samples in the order given."""
    items: dict[dt.datetime, bytes] = {}  # ts (or hour) → its encoded item; instants repeat
    # The metric arrays: a scrape files the same metrics in the same order for every resource.
    metric_arrays: dict[tuple[int, ...], bytes] = {}
    out = [_COPY_HEADER]
    add = out.append
    row_start = _ROW_START.pack
    array_start = _ARRAY_START.pack
    ts_item = _TIMESTAMPTZ_ITEM.pack
    value_item = _FLOAT8_ITEM.pack
    eights = itertools.repeat(8)
    for (tenant_id, kind, resource_id, hour), samples in resources.items():
        metrics, times, values = zip(*samples, strict=True)
        first, last = min(times), max(times)
        for moment in (first, last, hour):
            if moment not in items:
                items[moment] = ts_item(8, _micros(moment))
        count = len(samples)
        if first == last:  # one instant (a scrape): the same item count times
            encoded_times = items[first] * count
        else:
            encoded = []
            for ts in times:
                item = items.get(ts)
                if item is None:
                    item = items[ts] = ts_item(8, _micros(ts))
                encoded.append(item)
            encoded_times = b"".join(encoded)
        metric_array = metric_arrays.get(metrics)
        if metric_array is None:
            metric_array = metric_arrays[metrics] = array_start(
                20 + 6 * count, 1, 0, _INT2_OID, count, 1
            ) + b"".join([_INT2_ITEM.pack(2, metric) for metric in metrics])
        array_length = 20 + 12 * count
        add(row_start(9, 8, tenant_id, 2, kind, 8, resource_id))
        add(items[first])
        add(items[last])
        add(metric_array)
        add(array_start(array_length, 1, 0, _TIMESTAMPTZ_OID, count, 1))
        add(encoded_times)
        add(array_start(array_length, 1, 0, _FLOAT8_OID, count, 1))
        add(b"".join(map(value_item, eights, values)))
        add(items[hour])
    add(_COPY_TRAILER)
    return b"".join(out)


class SampleStore:
    """The storage interface; see the module docstring."""

    vendor = ""
    partitioned = False
    #: Whether ``insert_blocks(..., mark_dirty_hours=True)`` writes the rollup markers itself.
    marks_dirty_hours = False
    #: Whether samples are written in the database's transaction (False: an outside store).
    in_database = True
    #: How long after a write its samples may still be missing from reads (0: at once).
    search_delay = dt.timedelta(0)

    def wait_until_searchable(self) -> None:
        """Return once what was written so far can be read (for a seed that reads back)."""

    def _db_time(self, value: dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)

    def insert_samples(self, rows: Sequence[Row], *, days: Iterable[dt.date] | None = None) -> int:
        """Store ``rows`` in the current transaction; return how many were new.

        ``days``: the UTC days the rows fall on, when the caller knows them already.
        """
        raise NotImplementedError

    def insert_blocks(self, blocks: Blocks, *, mark_dirty_hours: bool = False) -> int:
        """Store samples grouped as by :func:`group_blocks`; return how many were new.

        ``mark_dirty_hours``: also mark the hours that received samples for the rollup, in the
        same statement (stores with ``marks_dirty_hours``; others leave it to the caller).
        """
        rows = [
            (tenant_id, kind, resource_id, metric, ts, value)
            for (tenant_id, kind, resource_id, metric, _hour), block in blocks.items()
            for ts, value in block.items()
        ]
        return self.insert_samples(rows)

    def series_points(
        self,
        *,
        tenant_id: int,
        kind: int,
        resource_id: int,
        metric: int,
        start: dt.datetime,
        end: dt.datetime,
        limit: int,
    ) -> list[tuple[dt.datetime, float]]:
        """(ts, value) of one series in [start, end), oldest first, at most ``limit``."""
        return list(
            TelemetrySample.objects.filter(
                tenant_id=tenant_id,
                resource_kind=kind,
                resource_id=resource_id,
                metric=metric,
                ts__gte=start,
                ts__lt=end,
            )
            .order_by("ts")
            .values_list("ts", "value")[:limit]
        )

    def window_stats(
        self,
        *,
        tenant_id: int,
        kind: int,
        metric: int,
        start: dt.datetime,
        end: dt.datetime,
        resources: QuerySet | None = None,
    ) -> list[WindowRow]:
        """(resource id, lowest, highest, count, first ts, last ts) of one metric per resource
        in [start, end], by resource id; ``resources``: a query of the ids to keep (None: all).

        Read sample by sample (SQLite's table, PostgreSQL's view): the portable path, and the
        reference the block read is checked against.
        """
        samples = TelemetrySample.objects.filter(
            tenant_id=tenant_id, resource_kind=kind, metric=metric, ts__gte=start, ts__lte=end
        )
        if resources is not None:
            samples = samples.filter(resource_id__in=resources)
        rows = (
            samples.order_by()
            .values("resource_id")
            .annotate(
                lowest=Min("value"),
                highest=Max("value"),
                samples=Count("value"),
                first_at=Min("ts"),
                last_at=Max("ts"),
            )
            .order_by("resource_id")
        )
        return [
            (r["resource_id"], r["lowest"], r["highest"], r["samples"], r["first_at"], r["last_at"])
            for r in rows
        ]

    def resources_reporting(self, *, tenant_id: int, since: dt.datetime) -> list[tuple[int, int]]:
        """(resource kind, resource id) of every resource of the tenant with a sample of any
        metric at or after ``since``."""
        return list(
            TelemetrySample.objects.filter(tenant_id=tenant_id, ts__gte=since)
            .order_by()
            .values_list("resource_kind", "resource_id")
            .distinct()
        )

    def last_sample_times(
        self,
        *,
        tenant_id: int,
        series: Sequence[tuple[int, int, int]],
        since: dt.datetime,
        until: dt.datetime,
    ) -> list[tuple[int, int, int, dt.datetime]]:
        """(kind, resource id, metric, time of its last sample at or before ``until``) of each
        of ``series`` (kind, resource id, metric) that has a sample in [since, until]."""
        if not series:
            return []
        wanted = set(series)
        rows = (
            TelemetrySample.objects.filter(
                tenant_id=tenant_id,
                resource_kind__in={kind for kind, _, _ in wanted},
                resource_id__in={resource_id for _, resource_id, _ in wanted},
                metric__in={metric for _, _, metric in wanted},
                ts__gte=since,
                ts__lte=until,
            )
            .order_by()
            .values_list("resource_kind", "resource_id", "metric")
            .annotate(last=Max("ts"))
        )
        return [row for row in rows if row[:3] in wanted]

    def ensure_partitions(self, days: Iterable[dt.date]) -> list[str]:
        """Make the missing partitions for ``days``; return the names made."""
        return []

    def partitions(self) -> list[tuple[str, dt.date]]:
        return []

    def drop_partitions_before(self, day: dt.date) -> list[str]:
        """Drop every partition that holds only days before ``day``."""
        return []

    def rollup_hour(self, *, tenant_id: int, hour: dt.datetime, now: dt.datetime) -> int:
        """Recompute the rollups of every series of the tenant in ``hour``; return the count."""
        with connection.cursor() as cursor:
            cursor.execute(
                _ROLLUP_UPSERT,
                [
                    self._db_time(hour),
                    self._db_time(now),
                    tenant_id,
                    self._db_time(hour),
                    self._db_time(hour + dt.timedelta(hours=1)),
                ],
            )
            return cursor.rowcount

    def delete_samples_before(self, *, tenant_id: int, cutoff: dt.datetime, batch: int) -> int:
        """Delete a batch of the tenant's samples older than ``cutoff``; return how many went
        (0 once none is left)."""
        with connection.cursor() as cursor:
            cursor.execute(_DELETE_SAMPLES_BATCH, [tenant_id, self._db_time(cutoff), batch])
            return cursor.rowcount


class SQLiteSampleStore(SampleStore):
    vendor = "sqlite"

    def insert_samples(self, rows: Sequence[Row], *, days: Iterable[dt.date] | None = None) -> int:
        if not rows:
            return 0
        adapt = connection.ops.adapt_datetimefield_value
        params = [(t, k, r, m, adapt(ts), v) for t, k, r, m, ts, v in rows]
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT OR IGNORE INTO {SAMPLE_TABLE} ({COLUMNS}) "  # noqa: S608
                "VALUES (%s, %s, %s, %s, %s, %s)",
                params,
            )
            return cursor.rowcount


class PostgresSampleStore(SampleStore):
    vendor = "postgresql"
    partitioned = True

    marks_dirty_hours = True

    def insert_samples(self, rows: Sequence[Row], *, days: Iterable[dt.date] | None = None) -> int:
        return self.insert_blocks(group_blocks(rows)) if rows else 0

    def insert_blocks(self, blocks: Blocks, *, mark_dirty_hours: bool = False) -> int:
        if not blocks:
            return 0
        if not connection.in_atomic_block:
            # The tenant scope's setting (RLS) lives in a transaction; so do the staging
            # table, the series locks and synchronous_commit.
            raise transaction.TransactionManagementError(
                "telemetry storage needs a transaction: run it inside tenant_scope()"
            )
        connection.ensure_connection()
        raw = connection.connection  # psycopg 3, in the same transaction as Django's cursors
        # Errors surface as Django's DatabaseError family, like any ORM query's.
        with connection.wrap_database_errors, raw.cursor() as cursor:
            target = self.stage_blocks(cursor, blocks)
            cursor.execute(block_insert_statement(mark_dirty_hours=mark_dirty_hours, target=target))
            return int(cursor.fetchone()[0])

    def stage_blocks(self, cursor, blocks: Blocks) -> str:
        """Lock the blocks' resources, make their days' partitions and COPY them into the staging
        table on ``cursor`` (psycopg's own); return the target of ``block_insert_statement``."""
        resources = group_resources(blocks)  # the rows: 8x fewer than blocks for a scrape
        days = {hour.date() for hour in {key[3] for key in resources}}  # a few hours
        names = {partition_name(day): day for day in days}
        locks = sorted(
            {
                (tenant_id * _LOCK_BUCKETS + (resource_id * 4 + kind) % _LOCK_BUCKETS) & 0x7FFFFFFF
                for tenant_id, kind, resource_id, _hour in resources
            }
        )
        data = encode_resources(resources)
        # One round trip: the staging table (it empties itself at commit; the DELETE only
        # matters when several batches share a transaction), synchronous_commit, the series
        # locks, and which of the days' partitions exist.
        cursor.execute(
            _STAGING_PREPARE.format(
                locks=",".join(map(str, locks)), partitions=",".join(sorted(names))
            )
        )
        while cursor.nextset():
            pass
        missing = set(names) - {row[0] for row in cursor.fetchall()}
        if missing:
            self.ensure_partitions(names[name] for name in missing)
        with cursor.copy(
            f"COPY {STAGING_TABLE} ({STAGING_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.write(data)
        # Partition names are made here from dates (``partition_name``), never from input.
        return next(iter(names)) if len(names) == 1 else BLOCK_TABLE

    def series_points(
        self,
        *,
        tenant_id: int,
        kind: int,
        resource_id: int,
        metric: int,
        start: dt.datetime,
        end: dt.datetime,
        limit: int,
    ) -> list[tuple[dt.datetime, float]]:
        with connection.cursor() as cursor:
            cursor.execute(
                _BLOCK_SERIES,
                {
                    "tenant": tenant_id,
                    "kind": kind,
                    "resource": resource_id,
                    "metric": metric,
                    "start": start,
                    "end": end,
                    "limit": limit,
                },
            )
            return cursor.fetchall()

    def window_stats(self, *, tenant_id, kind, metric, start, end, resources=None):
        # The view unnests every block, with no way to bound them by time: read the blocks.
        params = [tenant_id, kind, start, end, start - dt.timedelta(hours=1), metric, start, end]
        resource_sql = ""
        if resources is not None:
            subquery, subquery_params = resources.query.sql_with_params()
            resource_sql = f"AND b.resource_id IN ({subquery})"
            params.extend(subquery_params)
        with connection.cursor() as cursor:
            cursor.execute(_BLOCK_WINDOW_STATS.format(resources=resource_sql), params)
            return cursor.fetchall()

    def resources_reporting(self, *, tenant_id: int, since: dt.datetime) -> list[tuple[int, int]]:
        # A block lies within one hour: one that reaches ``since`` starts after since - 1 h,
        # which bounds the partitions and the index range read.
        with connection.cursor() as cursor:
            cursor.execute(
                _BLOCK_RESOURCES_REPORTING,
                {"tenant": tenant_id, "since": since, "from": since - dt.timedelta(hours=1)},
            )
            return [(kind, resource_id) for kind, resource_id in cursor.fetchall()]

    def last_sample_times(self, *, tenant_id, series, since, until):
        if not series:
            return []
        kinds, resources, metrics = (list(column) for column in zip(*series, strict=True))
        params = {
            "tenant": tenant_id,
            "kinds": kinds,
            "resources": resources,
            "metrics": metrics,
            "since": since,
            "until": until,
            # A block that reaches ``since`` starts less than an hour before it.
            "from": since - dt.timedelta(hours=1),
        }
        with connection.cursor() as cursor:
            cursor.execute(_BLOCK_LAST_SAMPLES, params)
            return cursor.fetchall()

    def rollup_hour(self, *, tenant_id: int, hour: dt.datetime, now: dt.datetime) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                _BLOCK_ROLLUP_UPSERT,
                {
                    "hour": hour,
                    "now": now,
                    "tenant": tenant_id,
                    "end": hour + dt.timedelta(hours=1),
                },
            )
            return cursor.rowcount

    def delete_samples_before(self, *, tenant_id: int, cutoff: dt.datetime, batch: int) -> int:
        """Delete up to ``batch`` whole blocks before ``cutoff``; once fewer are left, trim the
        blocks the cutoff falls in. Returns the samples removed."""
        params = {"tenant": tenant_id, "cutoff": cutoff, "batch": batch}
        with connection.cursor() as cursor:
            cursor.execute(_DELETE_BLOCKS_BATCH, params)
            blocks, samples = cursor.fetchone()
            if blocks < batch:
                cursor.execute(_COUNT_TRIMMED, params)
                trimmed = int(cursor.fetchone()[0])
                if trimmed:
                    cursor.execute(_TRIM_STRADDLING, params)
                samples += trimmed
        return int(samples)

    def partitions(self) -> list[tuple[str, dt.date]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = %s::regclass",
                [BLOCK_TABLE],
            )
            names = [row[0] for row in cursor.fetchall()]
        found = []
        for name in names:
            match = PARTITION_NAME.match(name)
            if match:
                found.append((name, dt.datetime.strptime(match.group(1), "%Y%m%d").date()))
        return sorted(found, key=lambda item: item[1])

    def _existing(self, cursor, names: list[str]) -> set[str]:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass AND c.relname = ANY(%s)",
            [BLOCK_TABLE, names],
        )
        return {row[0] for row in cursor.fetchall()}

    def ensure_partitions(self, days: Iterable[dt.date]) -> list[str]:
        wanted = {partition_name(day): day for day in days}
        if not wanted:
            return []
        made = []
        with connection.cursor() as cursor:
            missing = set(wanted) - self._existing(cursor, list(wanted))
            if not missing:
                return []
            # Two batches racing for the same new day: the second waits, then finds it made.
            advisory_xact_lock(_PARTITION_LOCK)
            for name in sorted(missing):
                # The function runs as the tables' owner (migration telemetry 0004), so the
                # partition is the owner's even when the app's role may not create tables.
                cursor.execute("SELECT telemetry_block_partition_create(%s)", [wanted[name]])
                if cursor.fetchone()[0]:
                    made.append(name)
        return made

    def drop_partitions_before(self, day: dt.date) -> list[str]:
        dropped = []
        with connection.cursor() as cursor:
            for name, partition_day in self.partitions():
                if partition_day < day:
                    cursor.execute("SELECT telemetry_block_partition_drop(%s)", [partition_day])
                    if cursor.fetchone()[0]:
                        dropped.append(name)
        return dropped


_STORES = {"postgresql": PostgresSampleStore(), "sqlite": SQLiteSampleStore()}


def sample_store() -> SampleStore:
    """The store in force: VictoriaMetrics when ``TELEMETRY_BACKEND`` says so, else the one for
    the default database."""
    if settings.TELEMETRY_BACKEND == "victoriametrics":
        from operations.telemetry.backends.victoriametrics import victoriametrics_store

        return victoriametrics_store()
    try:
        return _STORES[connection.vendor]
    except KeyError:
        raise NotImplementedError(f"telemetry has no store for {connection.vendor}") from None
