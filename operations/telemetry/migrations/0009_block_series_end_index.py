"""PostgreSQL: a second series index on the blocks, by ``ts_end``, for the overlap check of ingest.

A scrape stores one block per series, so a series gathers a block per scrape within the hour
(360 at 10 s). The overlap check read every one of them through the ``ts_start`` index (a
stored block that reaches into a new one may start anywhere in the hour): its cost grew with
each scrape of the hour. By ``ts_end`` the blocks reaching a new one lie in [its start, the end
of its hour): none for fresh data, found in one index descent. SQLite keeps its plain table.
"""

from django.db import migrations

INDEX = "telemetry_sample_block_series_end"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        # On the partitioned parent: every partition, present and future, gets it.
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON telemetry_sample_block "
            "(tenant_id, resource_kind, resource_id, metric, ts_end)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0008_partition_function_hashed_policy")]

    operations = [migrations.RunPython(create, drop)]
