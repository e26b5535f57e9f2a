from django.db import migrations

from tenants.rls import EnableTenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0001_initial")]

    # On the partitioned parent of telemetry_sample too; storage gives each partition the same.
    operations = [
        EnableTenantRowLevelSecurity(model)
        for model in ("telemetrysample", "telemetryrollup", "telemetrydirtyhour", "telemetrypolicy")
    ]
