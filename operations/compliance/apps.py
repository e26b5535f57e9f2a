from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "operations.compliance"
    label = "compliance"
    verbose_name = "Compliance"
