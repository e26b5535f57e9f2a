from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class GroundworkAdminConfig(AdminConfig):
    default_site = "msp.admin_site.GroundworkAdminSite"


class MspConfig(AppConfig):
    """The project as an app, for what wires the contexts together (the demo command)."""

    name = "msp"
    label = "msp"
    verbose_name = "Groundwork"
