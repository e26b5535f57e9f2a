"""Load the shipped readiness framework files (``load_readiness_frameworks`` does the same)."""

from django.db import migrations


def load(apps, schema_editor):
    from operations.readiness.catalogue import readiness_frameworks_load

    readiness_frameworks_load(framework_model=apps.get_model("readiness", "ReadinessFramework"))


class Migration(migrations.Migration):
    dependencies = [("readiness", "0002_row_level_security")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
