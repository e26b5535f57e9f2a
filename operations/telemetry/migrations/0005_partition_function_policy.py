"""PostgreSQL: re-create the partition function so that partitions made from now on carry the
isolation policy that reads the scope once per query (tenants 0007 updates existing ones)."""

import importlib

from django.db import migrations

_functions = importlib.import_module("operations.telemetry.migrations.0004_partition_functions")


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0004_partition_functions"),
        ("tenants", "0007_rls_policy_parsed_once"),
    ]

    operations = [migrations.RunPython(_functions.create_functions, migrations.RunPython.noop)]
