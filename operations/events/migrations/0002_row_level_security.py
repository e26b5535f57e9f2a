from django.db import migrations

from tenants.rls import EnableTenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("events", "0001_initial")]

    operations = [EnableTenantRowLevelSecurity("outboxevent")]
