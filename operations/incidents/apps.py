from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "operations.incidents"
    label = "incidents"
    verbose_name = "Incidents"
