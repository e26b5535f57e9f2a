from django.db import migrations

from tenants.rls import EnableTenantRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]

    operations = [
        EnableTenantRowLevelSecurity(model)
        for model in (
            "incidentcounter",
            "incident",
            "incidentaisystem",
            "incidentdeployment",
            "incidentcompute",
            "timelineentry",
            "postmortem",
            "postmortemactionitem",
        )
    ]
