"""PostgreSQL: re-create the partition function so that partitions made from now on carry the
isolation policy with the hashed scope (tenants 0008 updates existing ones)."""

import importlib

from django.db import migrations

_functions = importlib.import_module("operations.telemetry.migrations.0004_partition_functions")


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0007_rollup_metric_window_index"),
        ("tenants", "0008_rls_policy_hashed_scope"),
    ]

    operations = [migrations.RunPython(_functions.create_functions, migrations.RunPython.noop)]
