"""PostgreSQL: the block partitions are made and dropped by functions that run as their owner.

``telemetry_block_partition_create(day)`` and ``telemetry_block_partition_drop(day)`` are
``SECURITY DEFINER``: they run as the role that ran this migration (the owner), so a partition
made at run time, by an ingest or the maintenance task, belongs to the owner even when the app
connects as a runtime role that owns nothing and may not create tables. They run in the
caller's transaction: the partition is made under the batch's own locks (``CREATE TABLE ...
PARTITION OF`` locks the parent exclusively, which a second connection could wait on forever
while the batch holds the parent). Only the runtime role is granted EXECUTE (see
``tenants.database_roles``), not PUBLIC. SQLite has no partitions: nothing to do.

Self-contained SQL on purpose (the RLS statements come from ``tenants.rls``, as in 0003).
"""

from django.db import migrations

from tenants.rls import enable_rls_statements

BLOCK_TABLE = "telemetry_sample_block"
# Partition names as the storage module makes them: telemetry_sample_block_pYYYYMMDD.
PARTITION_NAME = f"'{BLOCK_TABLE}_p' || to_char(day, 'YYYYMMDD')"
IS_PARTITION = (
    "EXISTS (SELECT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    f"WHERE i.inhparent = '{BLOCK_TABLE}'::regclass AND c.relname = name)"
)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _create_function(schema: str) -> str:
    # Each partition gets the parent's forced RLS policy: format() puts its name in as %1$I.
    rls = enable_rls_statements("%1$I")
    assert all(statement.count("%") == 1 for statement in rls), "a stray % in the RLS SQL"
    return f"""
CREATE OR REPLACE FUNCTION telemetry_block_partition_create(day date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $fn$
DECLARE
    name text := {PARTITION_NAME};
    start timestamptz := day::timestamp AT TIME ZONE 'UTC';
    statement text;
BEGIN
    IF {IS_PARTITION} THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF {BLOCK_TABLE} FOR VALUES FROM (%L) TO (%L)',
        name, start, start + interval '1 day'
    );
    FOREACH statement IN ARRAY ARRAY[{", ".join(_literal(s) for s in rls)}] LOOP
        EXECUTE format(statement, name);
    END LOOP;
    RETURN true;
END
$fn$;
REVOKE ALL ON FUNCTION telemetry_block_partition_create(date) FROM PUBLIC;
"""


def _drop_function(schema: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION telemetry_block_partition_drop(day date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $fn$
DECLARE
    name text := {PARTITION_NAME};
BEGIN
    IF NOT {IS_PARTITION} THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP TABLE %I', name);
    RETURN true;
END
$fn$;
REVOKE ALL ON FUNCTION telemetry_block_partition_drop(date) FROM PUBLIC;
"""


def create_functions(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        # Pinned to the tables' schema (temporary objects last), as a SECURITY DEFINER
        # function must be, so no caller can put objects of its own in front.
        cursor.execute("SELECT quote_ident(current_schema())")
        schema = cursor.fetchone()[0]
        cursor.execute(_create_function(schema))
        cursor.execute(_drop_function(schema))


def drop_functions(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP FUNCTION IF EXISTS telemetry_block_partition_create(date)")
        cursor.execute("DROP FUNCTION IF EXISTS telemetry_block_partition_drop(date)")


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0003_sample_blocks")]

    operations = [migrations.RunPython(create_functions, drop_functions)]
