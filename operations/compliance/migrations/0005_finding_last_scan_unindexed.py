"""Findings are stamped by every scan: ``last_scan`` loses its index and database constraint,
and on PostgreSQL the table keeps room in each page, so the nightly re-run's update of
unchanged findings is an in-page (HOT) update."""

import django.db.models.deletion
from django.db import migrations, models


def _fillfactor(value: int):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE compliance_finding SET (fillfactor = {value})")

    return apply


class Migration(migrations.Migration):
    dependencies = [("compliance", "0004_score_pass_rate")]

    operations = [
        migrations.AlterField(
            model_name="finding",
            name="last_scan",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="compliance.compliancescan",
            ),
        ),
        migrations.RunPython(_fillfactor(80), _fillfactor(100)),
    ]
