from django.db import migrations

from tenants.rls import EnableTenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial")]

    operations = [
        EnableTenantRowLevelSecurity(model)
        for model in (
            "site",
            "link",
            "cloudaccount",
            "computeresource",
            "aisystem",
            "deployment",
            "dataset",
            "aisystemdataset",
        )
    ]
