from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "operations.incidents"
    label = "incidents"
    verbose_name = "Incidents"

    def ready(self):
        from operations.incidents.overview import incidents_overview
        from tenants.overview import register_overview_panel

        register_overview_panel(
            "incidents",
            title="Incidents and service levels",
            order=10,
            template="incidents/_overview_panel.html",
            build=incidents_overview,
        )
        from operations.incidents import selectors
        from tenants.fleet import FleetColumn, register_fleet_column

        register_fleet_column(
            FleetColumn(
                key="incidents",
                title="Open incidents",
                order=10,
                figures=selectors.fleet_open_incidents,
                help="By severity; a SEV1 weighs most.",
            )
        )
        register_fleet_column(
            FleetColumn(
                key="sla",
                title="SLA clocks",
                order=20,
                figures=selectors.fleet_sla_clocks,
                help="Breached, or running out within 30 minutes.",
            )
        )
        register_fleet_column(
            FleetColumn(
                key="regulator",
                title="Regulator",
                order=30,
                figures=selectors.fleet_regulator_deadlines,
                help="Serious incidents not yet notified, due within 72 hours or overdue.",
            )
        )
