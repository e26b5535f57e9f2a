from django.db import migrations

from tenants.rls import EnableTenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]

    operations = [
        EnableTenantRowLevelSecurity(model)
        for model in ("compliancescan", "finding", "waiver", "score")
    ]
