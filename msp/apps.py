from django.contrib.admin.apps import AdminConfig


class GroundworkAdminConfig(AdminConfig):
    default_site = "msp.admin_site.GroundworkAdminSite"
