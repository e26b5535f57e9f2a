from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class GroundworkAdminConfig(AdminConfig):
    default_site = "msp.admin_site.GroundworkAdminSite"

    def ready(self):
        super().ready()  # autodiscovers every app's admin module
        from django.contrib import admin

        from msp.admin_site import SCHEDULER_INTERNAL_APP, restrict_to_superusers

        restrict_to_superusers(admin.site, SCHEDULER_INTERNAL_APP)


class MspConfig(AppConfig):
    """The project as an app, for what wires the contexts together (the demo command)."""

    name = "msp"
    label = "msp"
    verbose_name = "Groundwork"
