from django.db import migrations

from tenants.rls import EnableTenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("events", "0005_notifications")]

    operations = [
        EnableTenantRowLevelSecurity("notificationpreference"),
        EnableTenantRowLevelSecurity("notification"),
    ]
