"""Where raw samples and rollups are written: the only code that knows the tables' SQL layout.

``sample_store()`` answers the store for the current database; both have the same interface.

PostgreSQL (:class:`PostgresSampleStore`)
    ``telemetry_sample`` is range-partitioned by ``ts``, one partition per UTC day, named
    ``telemetry_sample_pYYYYMMDD``. A batch's rows go by binary COPY into a session-private
    staging table, then one ``INSERT … SELECT`` moves them into the parent: COPY FROM is
    refused on a table with row-level security, and the INSERT runs in the caller's transaction
    under its tenant scope, so the policy's WITH CHECK still vets every row. The INSERT is
    tried plain first (new samples are the rule, and it is much cheaper); when some samples are
    stored already it is redone, from a savepoint, with ``ON CONFLICT DO NOTHING``. Missing
    partitions of the days a batch touches are made first (normally they exist:
    ``ensure_partitions`` makes them ahead); each gets the parent's forced RLS policy, so a
    partition read directly is walled like the parent. Retention drops whole partitions.

SQLite (:class:`SQLiteSampleStore`)
    One plain table with the same columns and primary key; ``INSERT OR IGNORE`` with
    executemany; retention deletes.

Raw SQL skips the fail-closed manager, so every statement here filters on ``tenant_id``
itself; on PostgreSQL row-level security applies underneath as everywhere else.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence

import psycopg
from django.db import connection, transaction

from tenants.rls import enable_rls_statements

SAMPLE_TABLE = "telemetry_sample"
ROLLUP_TABLE = "telemetry_rollup"
STAGING_TABLE = "telemetry_sample_staging"
COLUMNS = "tenant_id, resource_kind, resource_id, metric, ts, value"
PARTITION_NAME = re.compile(rf"^{SAMPLE_TABLE}_p(\d{{8}})$")
# Serialises partition DDL between concurrent batches (arbitrary, fixed key).
_PARTITION_LOCK_KEY = 7_305_118_263

#: (tenant_id, resource_kind, resource_id, metric code, ts (aware, UTC), value)
Row = tuple[int, int, int, int, dt.datetime, float]

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

_STAGING_PREPARE = f"""
    CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} (tenant_id bigint, resource_kind smallint,
        resource_id bigint, metric smallint, ts timestamptz, value double precision)
        ON COMMIT DELETE ROWS;
    DELETE FROM {STAGING_TABLE};
    SAVEPOINT telemetry_insert
"""  # noqa: S608 - table names are constants
_STAGING_MOVE = f"INSERT INTO {SAMPLE_TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {STAGING_TABLE}"  # noqa: S608
_STAGING_MOVE_SKIPPING_STORED = (
    f"{_STAGING_MOVE} ORDER BY tenant_id, resource_kind, resource_id, metric, ts "
    "ON CONFLICT DO NOTHING"
)

_DELETE_SAMPLES_BATCH = f"""
    DELETE FROM {SAMPLE_TABLE}
    WHERE (tenant_id, resource_kind, resource_id, metric, ts) IN (
        SELECT tenant_id, resource_kind, resource_id, metric, ts FROM {SAMPLE_TABLE}
        WHERE tenant_id = %s AND ts < %s LIMIT %s
    )
"""  # noqa: S608 - table names are constants


def partition_name(day: dt.date) -> str:
    return f"{SAMPLE_TABLE}_p{day:%Y%m%d}"


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


class SampleStore:
    """The storage interface; see the module docstring."""

    vendor = ""
    partitioned = False

    def _db_time(self, value: dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)

    def insert_samples(self, rows: Sequence[Row], *, days: Iterable[dt.date] | None = None) -> int:
        """Store ``rows`` in the current transaction; return how many were new.

        ``days``: the UTC days the rows fall on, when the caller knows them already.
        """
        raise NotImplementedError

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
        """Delete up to ``batch`` of the tenant's samples older than ``cutoff``."""
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

    def insert_samples(self, rows: Sequence[Row], *, days: Iterable[dt.date] | None = None) -> int:
        if not rows:
            return 0
        if not connection.in_atomic_block:
            # The tenant scope's setting (RLS) lives in a transaction; so does the staging.
            raise transaction.TransactionManagementError(
                "telemetry storage needs a transaction: run it inside tenant_scope()"
            )
        self.ensure_partitions(set(days) if days is not None else {row[4].date() for row in rows})
        connection.ensure_connection()
        raw = connection.connection  # psycopg 3, in the same transaction as Django's cursors
        # Errors surface as Django's DatabaseError family, like any ORM query's.
        with connection.wrap_database_errors, raw.cursor() as cursor:
            # One round trip. The staging table empties itself at commit; the DELETE only
            # matters when several batches share a transaction (the demo, tests), and costs
            # nothing on an empty table.
            cursor.execute(_STAGING_PREPARE)
            self._copy_to_staging(cursor, rows)
            try:
                # New samples are the rule: a plain INSERT costs about 60 % of one with
                # ON CONFLICT (no speculative insertion into the primary key).
                cursor.execute(_STAGING_MOVE)
            except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected):
                # Some were stored already (a re-sent batch, duplicates within it, a concurrent
                # batch), or a concurrent batch with the same samples in another order
                # deadlocked with this one: back to before the COPY, and again skipping them,
                # in key order.
                cursor.execute("ROLLBACK TO SAVEPOINT telemetry_insert")
                self._copy_to_staging(cursor, rows)
                cursor.execute(_STAGING_MOVE_SKIPPING_STORED)
            inserted = cursor.rowcount
            cursor.execute("RELEASE SAVEPOINT telemetry_insert")
        return inserted

    @staticmethod
    def _copy_to_staging(cursor, rows: Sequence[Row]) -> None:
        with cursor.copy(f"COPY {STAGING_TABLE} ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "int2", "int8", "int2", "timestamptz", "float8"])
            write_row = copy.write_row
            for row in rows:
                write_row(row)

    def partitions(self) -> list[tuple[str, dt.date]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = %s::regclass",
                [SAMPLE_TABLE],
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
            [SAMPLE_TABLE, names],
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
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PARTITION_LOCK_KEY])
            missing -= self._existing(cursor, sorted(missing))
            for name in sorted(missing):
                start = day_start(wanted[name])
                end = start + dt.timedelta(days=1)
                cursor.execute(
                    f"CREATE TABLE {name} PARTITION OF {SAMPLE_TABLE} "
                    f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                )
                for statement in enable_rls_statements(name):
                    cursor.execute(statement)
                made.append(name)
        return made

    def drop_partitions_before(self, day: dt.date) -> list[str]:
        dropped = []
        with connection.cursor() as cursor:
            for name, partition_day in self.partitions():
                if partition_day < day:
                    cursor.execute(f"DROP TABLE {name}")
                    dropped.append(name)
        return dropped


_STORES = {"postgresql": PostgresSampleStore(), "sqlite": SQLiteSampleStore()}


def sample_store() -> SampleStore:
    """The store for the default database."""
    try:
        return _STORES[connection.vendor]
    except KeyError:
        raise NotImplementedError(f"telemetry has no store for {connection.vendor}") from None
