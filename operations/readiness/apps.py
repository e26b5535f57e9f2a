from django.apps import AppConfig


class ReadinessConfig(AppConfig):
    name = "operations.readiness"
    label = "readiness"
    verbose_name = "Readiness"

    def ready(self):
        from operations.readiness.fleet import fleet_readiness_levels, fleet_readiness_total
        from tenants.fleet import FleetColumn, register_fleet_column

        register_fleet_column(
            FleetColumn(
                key="readiness",
                title="Readiness",
                order=50,
                figures=fleet_readiness_levels,
                total=fleet_readiness_total,
                help="The newest readiness level (1–5) and overall score.",
            )
        )
