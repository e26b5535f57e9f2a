from django.db import migrations

from tenants.rls import EnableTenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("readiness", "0001_initial")]

    operations = [
        EnableTenantRowLevelSecurity(model)
        for model in ("assessment", "assessmentanswer", "readinessscore", "gateoverride")
    ]
