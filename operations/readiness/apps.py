from django.apps import AppConfig


class ReadinessConfig(AppConfig):
    name = "operations.readiness"
    label = "readiness"
    verbose_name = "Readiness"
