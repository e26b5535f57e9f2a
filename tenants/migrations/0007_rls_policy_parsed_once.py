"""PostgreSQL: every isolation policy reads the scope's tenant ids once per query, not per row.

Databases migrated before this hold the per-row form; new tables get the new one from
``tenants.rls`` directly. The telemetry partition function is re-created by telemetry's own
migration, so partitions made later carry the new form too. SQLite: nothing to do.
"""

from django.db import migrations

from tenants.rls import policies_refresh


def refresh(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        policies_refresh(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0006_user_timezone")]

    operations = [migrations.RunPython(refresh, migrations.RunPython.noop)]
