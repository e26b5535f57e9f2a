from django.db import migrations

from tenants.rls import EnableTenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("events", "0003_webhooks")]

    operations = [
        EnableTenantRowLevelSecurity("webhookendpoint"),
        EnableTenantRowLevelSecurity("delivery"),
    ]
