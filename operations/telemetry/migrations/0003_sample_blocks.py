"""PostgreSQL: samples move into series blocks (see ``operations.telemetry.storage``).

``telemetry_sample_block`` holds one row per (series, hour, batch) with the samples as sorted
arrays, partitioned by day on ``ts_start``, with forced row-level security on the parent and
every partition. Stored samples are moved over (one block per series and hour), the old
per-sample table and its partitions are dropped, and ``telemetry_sample`` becomes a
``security_invoker`` view that unnests the blocks, so the model and plain SQL read samples as
before, under the caller's row-level security. SQLite keeps its plain table: nothing to do.

Self-contained SQL on purpose: the storage module may change after this migration.
"""

import datetime as dt
import re

from django.db import migrations

from tenants.rls import enable_rls_statements
from tenants.scoping import RLS_SETTING

SAMPLE_TABLE = "telemetry_sample"
BLOCK_TABLE = "telemetry_sample_block"
OLD_PARTITION = re.compile(rf"^{SAMPLE_TABLE}_p(\d{{8}})$")
NEW_PARTITION = re.compile(rf"^{BLOCK_TABLE}_p(\d{{8}})$")

BLOCK_DDL = f"""
    CREATE TABLE {BLOCK_TABLE} (
        tenant_id bigint NOT NULL,
        resource_id bigint NOT NULL,
        ts_start timestamptz NOT NULL,
        ts_end timestamptz NOT NULL,
        resource_kind smallint NOT NULL,
        metric smallint NOT NULL,
        ts timestamptz[] NOT NULL,
        vals double precision[] NOT NULL,
        -- Reads and the overlap check of ingest rely on a block lying within one UTC hour.
        CONSTRAINT telemetry_sample_block_arrays CHECK (
            cardinality(ts) > 0 AND cardinality(ts) = cardinality(vals)
            AND ts_start <= ts_end
            AND date_trunc('hour', ts_start AT TIME ZONE 'UTC')
                = date_trunc('hour', ts_end AT TIME ZONE 'UTC')
        )
    ) PARTITION BY RANGE (ts_start)
"""
# Serves the overlap check of ingest and the series read (one series; a block lies within one
# UTC hour, so the blocks that reach into [start, end) start in (start - 1 hour, end)), and a
# tenant's rollups and retention (tenant prefix).
BLOCK_INDEX = (
    f"CREATE INDEX telemetry_sample_block_series ON {BLOCK_TABLE} "
    "(tenant_id, resource_kind, resource_id, metric, ts_start)"
)
VIEW_DDL = f"""
    CREATE VIEW {SAMPLE_TABLE} WITH (security_invoker = true) AS
    SELECT b.tenant_id, b.resource_kind, b.resource_id, b.metric, u.ts, u.value
    FROM {BLOCK_TABLE} b CROSS JOIN LATERAL unnest(b.ts, b.vals) AS u(ts, value)
"""
OLD_DDL = f"""
    CREATE TABLE {SAMPLE_TABLE} (
        tenant_id bigint NOT NULL,
        resource_id bigint NOT NULL,
        ts timestamptz NOT NULL,
        value double precision NOT NULL,
        resource_kind smallint NOT NULL,
        metric smallint NOT NULL,
        CONSTRAINT telemetry_sample_pkey
            PRIMARY KEY (tenant_id, resource_kind, resource_id, metric, ts)
    ) PARTITION BY RANGE (ts)
"""


def _partition_days(cursor, parent: str, pattern) -> list[dt.date]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass",
        [parent],
    )
    days = []
    for (name,) in cursor.fetchall():
        match = pattern.match(name)
        if match:
            days.append(dt.datetime.strptime(match.group(1), "%Y%m%d").date())
    return sorted(days)


def _make_partition(cursor, parent: str, day: dt.date) -> None:
    name = f"{parent}_p{day:%Y%m%d}"
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    cursor.execute(
        f"CREATE TABLE {name} PARTITION OF {parent} "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )
    for statement in enable_rls_statements(name):
        cursor.execute(statement)


def _see_every_tenant(cursor) -> None:
    # Forced row-level security applies to the owner too: the move reads and writes every
    # tenant's rows under a scope of all tenants, for this transaction only.
    cursor.execute(
        "SELECT set_config(%s, COALESCE((SELECT string_agg(id::text, ',') "
        "FROM tenants_tenant), ''), true)",
        [RLS_SETTING],
    )


def to_blocks(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(BLOCK_DDL)
        cursor.execute(BLOCK_INDEX)
        for statement in enable_rls_statements(BLOCK_TABLE):
            cursor.execute(statement)
        for day in _partition_days(cursor, SAMPLE_TABLE, OLD_PARTITION):
            _make_partition(cursor, BLOCK_TABLE, day)
        _see_every_tenant(cursor)
        cursor.execute(
            f"INSERT INTO {BLOCK_TABLE} (tenant_id, resource_kind, resource_id, metric, "
            "ts_start, ts_end, ts, vals) "
            "SELECT tenant_id, resource_kind, resource_id, metric, min(ts), max(ts), "
            "array_agg(ts ORDER BY ts), array_agg(value ORDER BY ts) "
            f"FROM {SAMPLE_TABLE} "
            "GROUP BY tenant_id, resource_kind, resource_id, metric, "
            "date_trunc('hour', ts, 'UTC')"
        )
        cursor.execute(f"DROP TABLE {SAMPLE_TABLE}")
        cursor.execute(VIEW_DDL)
        cursor.execute("SELECT set_config(%s, '', true)", [RLS_SETTING])


def to_rows(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"ALTER VIEW {SAMPLE_TABLE} RENAME TO telemetry_sample_unnested")
        cursor.execute(OLD_DDL)
        for statement in enable_rls_statements(SAMPLE_TABLE):
            cursor.execute(statement)
        for day in _partition_days(cursor, BLOCK_TABLE, NEW_PARTITION):
            _make_partition(cursor, SAMPLE_TABLE, day)
        _see_every_tenant(cursor)
        cursor.execute(
            f"INSERT INTO {SAMPLE_TABLE} (tenant_id, resource_kind, resource_id, metric, ts, "
            "value) SELECT tenant_id, resource_kind, resource_id, metric, ts, value "
            "FROM telemetry_sample_unnested"
        )
        cursor.execute("DROP VIEW telemetry_sample_unnested")
        cursor.execute(f"DROP TABLE {BLOCK_TABLE}")
        cursor.execute("SELECT set_config(%s, '', true)", [RLS_SETTING])


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0002_row_level_security")]

    operations = [migrations.RunPython(to_blocks, to_rows)]
