from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "operations.telemetry"
    label = "telemetry"
    verbose_name = "Telemetry"
