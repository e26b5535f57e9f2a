from django.apps import AppConfig


class OptimisationConfig(AppConfig):
    name = "operations.optimisation"
    label = "optimisation"
    verbose_name = "Optimisation"

    def ready(self):
        from operations.optimisation.overview import savings_overview
        from tenants.overview import register_overview_panel

        register_overview_panel(
            "savings",
            title="Savings",
            order=40,
            template="optimisation/_overview_panel.html",
            build=savings_overview,
        )
        from operations.optimisation.selectors import fleet_open_savings
        from tenants.fleet import FleetColumn, register_fleet_column

        register_fleet_column(
            FleetColumn(
                key="savings",
                title="Open savings / month",
                order=80,
                figures=fleet_open_savings,
                help="Open recommendations' estimated monthly saving.",
            )
        )
