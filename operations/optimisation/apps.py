from django.apps import AppConfig


class OptimisationConfig(AppConfig):
    name = "operations.optimisation"
    label = "optimisation"
    verbose_name = "Optimisation"
