from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "operations.jobs"
    label = "jobs"
    verbose_name = "Background jobs"
