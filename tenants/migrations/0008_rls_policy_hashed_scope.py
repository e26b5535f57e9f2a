"""PostgreSQL: every isolation policy checks a row's tenant with one hash probe into the
scope's ids (a hashed SubPlan) instead of comparing it with each id of the scope.

New tables get the new form from ``tenants.rls`` directly; telemetry re-creates its partition
function so partitions made later carry it too. SQLite: nothing to do.
"""

from django.db import migrations

from tenants.rls import policies_refresh


def refresh(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        policies_refresh(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0007_rls_policy_parsed_once")]

    operations = [migrations.RunPython(refresh, migrations.RunPython.noop)]
