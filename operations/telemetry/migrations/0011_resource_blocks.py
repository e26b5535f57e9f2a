"""PostgreSQL: a block holds the samples of one resource (all its metrics), not of one series.

A scrape stored one block row per series (3,600 for 400 GPUs and 50 hosts × 8 metrics), and the
database's cost of ingest is per row (heap, two index entries, the row-level-security check,
the overlap probe): ~11 µs a row. A row now holds one resource's samples of one batch within
one UTC hour as three parallel arrays (``metrics``, ``ts``, ``vals``) sorted by time, then
metric: 450 rows a scrape. The series indexes become resource indexes (the ``ts_start`` one for
series reads, rollups and retention; the ``ts_end`` one for the overlap check of ingest).

The old table and its partitions are renamed aside, the new parent and the same days'
partitions made (through ``telemetry_block_partition_create``, so each gets its forced RLS
policy), the samples moved over (one block per resource and hour), the old table dropped, and
``telemetry_sample`` re-created over the new blocks. Backwards does the reverse. SQLite keeps
its plain table: nothing to do.

Self-contained SQL on purpose: the storage module may change after this migration.
"""

import datetime as dt
import re

from django.db import migrations

from tenants.rls import enable_rls_statements
from tenants.scoping import RLS_SETTING

SAMPLE_TABLE = "telemetry_sample"
BLOCK_TABLE = "telemetry_sample_block"
OLD_TABLE = "telemetry_sample_block_moving"
PARTITION = re.compile(rf"^{BLOCK_TABLE}_p(\d{{8}})$")
HOUR_CHECK = """
            AND ts_start <= ts_end
            AND date_trunc('hour', ts_start AT TIME ZONE 'UTC')
                = date_trunc('hour', ts_end AT TIME ZONE 'UTC')"""

RESOURCE_DDL = f"""
    CREATE TABLE {BLOCK_TABLE} (
        tenant_id bigint NOT NULL,
        resource_id bigint NOT NULL,
        ts_start timestamptz NOT NULL,
        ts_end timestamptz NOT NULL,
        resource_kind smallint NOT NULL,
        metrics smallint[] NOT NULL,
        ts timestamptz[] NOT NULL,
        vals double precision[] NOT NULL,
        -- Reads and the overlap check of ingest rely on a block lying within one UTC hour.
        CONSTRAINT telemetry_sample_block_arrays CHECK (
            cardinality(ts) > 0 AND cardinality(ts) = cardinality(vals)
            AND cardinality(ts) = cardinality(metrics){HOUR_CHECK}
        )
    ) PARTITION BY RANGE (ts_start)
"""
RESOURCE_INDEXES = [
    f"CREATE INDEX telemetry_sample_block_resource ON {BLOCK_TABLE} "
    "(tenant_id, resource_kind, resource_id, ts_start)",
    f"CREATE INDEX telemetry_sample_block_resource_end ON {BLOCK_TABLE} "
    "(tenant_id, resource_kind, resource_id, ts_end)",
]
RESOURCE_VIEW = f"""
    CREATE VIEW {SAMPLE_TABLE} WITH (security_invoker = true) AS
    SELECT b.tenant_id, b.resource_kind, b.resource_id, u.metric, u.ts, u.value
    FROM {BLOCK_TABLE} b
    CROSS JOIN LATERAL unnest(b.metrics, b.ts, b.vals) AS u(metric, ts, value)
"""
RESOURCE_MOVE = f"""
    INSERT INTO {BLOCK_TABLE} (tenant_id, resource_kind, resource_id, ts_start, ts_end,
        metrics, ts, vals)
    SELECT b.tenant_id, b.resource_kind, b.resource_id, min(u.ts), max(u.ts),
        array_agg(b.metric ORDER BY u.ts, b.metric), array_agg(u.ts ORDER BY u.ts, b.metric),
        array_agg(u.value ORDER BY u.ts, b.metric)
    FROM {OLD_TABLE} b CROSS JOIN LATERAL unnest(b.ts, b.vals) AS u(ts, value)
    GROUP BY b.tenant_id, b.resource_kind, b.resource_id, date_trunc('hour', u.ts, 'UTC')
"""

SERIES_DDL = f"""
    CREATE TABLE {BLOCK_TABLE} (
        tenant_id bigint NOT NULL,
        resource_id bigint NOT NULL,
        ts_start timestamptz NOT NULL,
        ts_end timestamptz NOT NULL,
        resource_kind smallint NOT NULL,
        metric smallint NOT NULL,
        ts timestamptz[] NOT NULL,
        vals double precision[] NOT NULL,
        CONSTRAINT telemetry_sample_block_arrays CHECK (
            cardinality(ts) > 0 AND cardinality(ts) = cardinality(vals){HOUR_CHECK}
        )
    ) PARTITION BY RANGE (ts_start)
"""
SERIES_INDEXES = [
    f"CREATE INDEX telemetry_sample_block_series ON {BLOCK_TABLE} "
    "(tenant_id, resource_kind, resource_id, metric, ts_start)",
    f"CREATE INDEX telemetry_sample_block_series_end ON {BLOCK_TABLE} "
    "(tenant_id, resource_kind, resource_id, metric, ts_end)",
]
SERIES_VIEW = f"""
    CREATE VIEW {SAMPLE_TABLE} WITH (security_invoker = true) AS
    SELECT b.tenant_id, b.resource_kind, b.resource_id, b.metric, u.ts, u.value
    FROM {BLOCK_TABLE} b CROSS JOIN LATERAL unnest(b.ts, b.vals) AS u(ts, value)
"""
SERIES_MOVE = f"""
    INSERT INTO {BLOCK_TABLE} (tenant_id, resource_kind, resource_id, metric, ts_start,
        ts_end, ts, vals)
    SELECT b.tenant_id, b.resource_kind, b.resource_id, u.metric, min(u.ts), max(u.ts),
        array_agg(u.ts ORDER BY u.ts), array_agg(u.value ORDER BY u.ts)
    FROM {OLD_TABLE} b CROSS JOIN LATERAL unnest(b.metrics, b.ts, b.vals) AS u(metric, ts, value)
    GROUP BY b.tenant_id, b.resource_kind, b.resource_id, u.metric,
        date_trunc('hour', u.ts, 'UTC')
"""


def _partition_days(cursor) -> list[dt.date]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass",
        [BLOCK_TABLE],
    )
    days = []
    for (name,) in cursor.fetchall():
        match = PARTITION.match(name)
        if match:
            days.append(dt.datetime.strptime(match.group(1), "%Y%m%d").date())
    return sorted(days)


def _relayout(schema_editor, ddl: str, indexes: list[str], move: str, view: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        days = _partition_days(cursor)
        cursor.execute(f"DROP VIEW {SAMPLE_TABLE}")
        # Renamed aside so the new parent and partitions take the names the partition
        # functions (migration 0004) and the storage module use.
        cursor.execute(f"ALTER TABLE {BLOCK_TABLE} RENAME TO {OLD_TABLE}")
        for day in days:
            cursor.execute(
                f"ALTER TABLE {BLOCK_TABLE}_p{day:%Y%m%d} RENAME TO {OLD_TABLE}_p{day:%Y%m%d}"
            )
        cursor.execute(ddl)
        for statement in indexes:
            cursor.execute(statement)
        for statement in enable_rls_statements(BLOCK_TABLE):
            cursor.execute(statement)
        for day in days:
            # As the owner, with the partition's forced RLS policy (migration 0004).
            cursor.execute("SELECT telemetry_block_partition_create(%s)", [day])
        # Forced row-level security applies to the owner too: the move reads and writes every
        # tenant's rows under a scope of all tenants, for this transaction only.
        cursor.execute(
            "SELECT set_config(%s, COALESCE((SELECT string_agg(id::text, ',') "
            "FROM tenants_tenant), ''), true)",
            [RLS_SETTING],
        )
        cursor.execute(move)
        cursor.execute("SELECT set_config(%s, '', true)", [RLS_SETTING])
        cursor.execute(f"DROP TABLE {OLD_TABLE}")
        cursor.execute(view)


def to_resource_blocks(apps, schema_editor):
    _relayout(schema_editor, RESOURCE_DDL, RESOURCE_INDEXES, RESOURCE_MOVE, RESOURCE_VIEW)


def to_series_blocks(apps, schema_editor):
    _relayout(schema_editor, SERIES_DDL, SERIES_INDEXES, SERIES_MOVE, SERIES_VIEW)


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0010_resource_kind_gpu")]

    operations = [migrations.RunPython(to_resource_blocks, to_series_blocks)]
