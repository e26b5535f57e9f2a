"""Load the shipped framework data files (the ``load_frameworks`` command does the same)."""

from django.db import migrations


def load(apps, schema_editor):
    from operations.compliance.catalogue import frameworks_load

    frameworks_load(
        framework_model=apps.get_model("compliance", "Framework"),
        control_model=apps.get_model("compliance", "Control"),
    )


class Migration(migrations.Migration):
    dependencies = [("compliance", "0002_row_level_security")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
