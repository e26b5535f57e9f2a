from django.db import migrations

from tenants.rls import EnableTenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("incidents", "0003_alert_rules")]

    operations = [EnableTenantRowLevelSecurity("alertrule")]
