"""``AISystem.stage_changed_at``: when the system entered its current stage. Existing systems
get the time of their last audited stage change (create, update or transition), else their
creation time."""

import django.utils.timezone
from django.db import migrations, models
from django.db.models import Max

from tenants.scoping import rls_set_statement


def backfill(apps, schema_editor):
    connection = schema_editor.connection
    Tenant = apps.get_model("tenants", "Tenant")
    AISystem = apps.get_model("inventory", "AISystem")
    AuditEvent = apps.get_model("tenants", "AuditEvent")
    if connection.vendor == "postgresql":
        # Row-level security is forced on the table, for its owner too: see every tenant.
        tenant_ids = list(Tenant.objects.values_list("id", flat=True))
        with connection.cursor() as cursor:
            cursor.execute(*rls_set_statement(tenant_ids))
    last_change = dict(
        AuditEvent.objects.filter(object_type="inventory.AISystem", changes__has_key="stage")
        .values_list("object_id")
        .annotate(last=Max("occurred_at"))
        .order_by()
    )
    systems = list(AISystem.objects.only("id", "created_at"))
    for system in systems:
        system.stage_changed_at = last_change.get(str(system.pk), system.created_at)
    AISystem.objects.bulk_update(systems, ["stage_changed_at"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0004_ai_system_compliance_records"),
        ("tenants", "0005_tenant_require_mfa"),
    ]

    operations = [
        migrations.AddField(
            model_name="aisystem",
            name="stage_changed_at",
            field=models.DateTimeField(editable=False, null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="aisystem",
            name="stage_changed_at",
            field=models.DateTimeField(
                default=django.utils.timezone.now,
                editable=False,
                help_text="When the system entered its current stage (set by the stage-changing services).",
            ),
        ),
    ]
