from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "operations.inventory"
    label = "inventory"
    verbose_name = "AI estate inventory"

    def ready(self):
        from operations.inventory.overview import estate_overview
        from tenants.overview import register_overview_panel

        register_overview_panel(
            "estate",
            title="GPU utilisation and spend",
            order=30,
            template="inventory/_overview_panel.html",
            build=estate_overview,
        )
