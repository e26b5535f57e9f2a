from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "operations.telemetry"
    label = "telemetry"
    verbose_name = "Telemetry"

    def ready(self):
        from operations.telemetry import selectors
        from tenants.fleet import FleetColumn, register_fleet_column

        register_fleet_column(
            FleetColumn(
                key="gpu",
                title="GPU use (24 h)",
                order=60,
                figures=selectors.fleet_gpu_utilisation,
                total=selectors.fleet_gpu_utilisation_total,
                help="Mean GPU utilisation over the last 24 hours (refreshed every 5 minutes).",
                cache_seconds=300,
            )
        )
        register_fleet_column(
            FleetColumn(
                key="spend",
                title="Cloud spend (month)",
                order=70,
                figures=selectors.fleet_spend_this_month,
                total=selectors.fleet_spend_total,
                help=(
                    "This month's spend against the cloud accounts' budgets "
                    "(refreshed every 5 minutes)."
                ),
                cache_seconds=300,
            )
        )
