from django.db import migrations

from tenants.rls import EnableTenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("events", "0007_oncall_escalation")]

    operations = [
        EnableTenantRowLevelSecurity("escalationpolicy"),
        EnableTenantRowLevelSecurity("incidentsignal"),
    ]
