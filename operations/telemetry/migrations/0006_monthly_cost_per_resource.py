"""``TelemetryMonthlyCost``: each resource's cost per UTC month, kept by the rollup job, filled
here from the cost rollups already stored."""

import datetime as dt

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Count, Sum
from django.db.models.functions import TruncMonth

from tenants.rls import EnableTenantRowLevelSecurity
from tenants.scoping import rls_set_statement

COST_PER_HOUR = 30  # operations.telemetry.metrics: "cost_per_hour"


def backfill(apps, schema_editor):
    connection = schema_editor.connection
    Tenant = apps.get_model("tenants", "Tenant")
    TelemetryRollup = apps.get_model("telemetry", "TelemetryRollup")
    TelemetryMonthlyCost = apps.get_model("telemetry", "TelemetryMonthlyCost")
    if connection.vendor == "postgresql":
        # Row-level security is forced on both tables, for their owner too: see every tenant.
        tenant_ids = list(Tenant.objects.values_list("id", flat=True))
        with connection.cursor() as cursor:
            cursor.execute(*rls_set_statement(tenant_ids))
    now = dt.datetime.now(dt.UTC)
    months = (
        TelemetryRollup.objects.filter(metric=COST_PER_HOUR)
        .annotate(month=TruncMonth("bucket", tzinfo=dt.UTC))
        .order_by()
        .values("tenant_id", "resource_kind", "resource_id", "month")
        .annotate(cost=Sum("avg_value"), hours=Count("id"))
    )
    TelemetryMonthlyCost.objects.bulk_create(
        (
            TelemetryMonthlyCost(
                tenant_id=row["tenant_id"],
                resource_kind=row["resource_kind"],
                resource_id=row["resource_id"],
                month=row["month"].date(),
                cost=row["cost"],
                hours=row["hours"],
                computed_at=now,
            )
            for row in months.iterator()
        ),
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0005_partition_function_policy"),
        ("tenants", "0007_rls_policy_parsed_once"),
    ]

    operations = [
        migrations.CreateModel(
            name="TelemetryMonthlyCost",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "resource_kind",
                    models.SmallIntegerField(choices=[(1, "compute"), (2, "deployment")]),
                ),
                ("resource_id", models.BigIntegerField()),
                ("month", models.DateField(help_text="First day of the UTC month.")),
                (
                    "cost",
                    models.FloatField(help_text="Sum of the month's hourly mean cost per hour."),
                ),
                ("hours", models.PositiveIntegerField(help_text="Hours with a cost rollup.")),
                ("computed_at", models.DateTimeField()),
                (
                    "tenant",
                    models.ForeignKey(
                        editable=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="tenants.tenant",
                    ),
                ),
            ],
            options={
                "db_table": "telemetry_monthly_cost",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("tenant", "month", "resource_kind", "resource_id"),
                        name="telemetry_monthly_cost_identity",
                    )
                ],
            },
        ),
        EnableTenantRowLevelSecurity("telemetrymonthlycost"),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
