from django.apps import AppConfig


class ReadinessConfig(AppConfig):
    name = "operations.readiness"
    label = "readiness"
    verbose_name = "Readiness"

    def ready(self):
        # Inventory must not import readiness: the pilot → production gates reach its stage
        # changes through the guard registry it offers.
        import operations.readiness.admin_gates  # noqa: F401 - registers the override admin
        from operations.inventory.services import register_stage_change_guard
        from operations.readiness.gates import gates_stage_guard

        register_stage_change_guard(gates_stage_guard)
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
