from django.db import migrations

from operations.jobs.rls import EnableFleetAwareRowLevelSecurity
from tenants.rls import EnableTenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("jobs", "0001_initial")]

    operations = [
        EnableTenantRowLevelSecurity("jobschedule"),
        # Fleet runs and their logs have no tenant; see operations.jobs.rls.
        EnableFleetAwareRowLevelSecurity("jobrun"),
        EnableFleetAwareRowLevelSecurity("joblog"),
    ]
