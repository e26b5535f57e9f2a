from django.db import migrations, models


class Migration(migrations.Migration):
    # Every run's insert, claim and finish wrote an entry into (kind, status); now only failed
    # and cancelled runs have one (see JobRun.Meta.indexes).
    dependencies = [("jobs", "0003_lean_run_indexes")]

    operations = [
        migrations.RemoveIndex(model_name="jobrun", name="jobs_run_kind_status"),
        migrations.AddIndex(
            model_name="jobrun",
            index=models.Index(
                condition=models.Q(("status__in", ["failed", "cancelled"])),
                fields=["kind", "status"],
                name="jobs_run_kind_unsuccessful",
            ),
        ),
    ]
