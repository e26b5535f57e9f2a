from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "operations.inventory"
    label = "inventory"
    verbose_name = "AI estate inventory"
