from django.db import migrations

from tenants.rls import EnableTenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("optimisation", "0001_initial")]

    operations = [EnableTenantRowLevelSecurity("recommendation")]
