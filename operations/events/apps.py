from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "operations.events"
    label = "events"
    verbose_name = "Integration events"
