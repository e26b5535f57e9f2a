from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "operations.compliance"
    label = "compliance"
    verbose_name = "Compliance"

    def ready(self):
        from operations.compliance.overview import compliance_overview
        from tenants.overview import register_overview_panel

        register_overview_panel(
            "compliance",
            title="Compliance",
            order=20,
            template="compliance/_overview_panel.html",
            build=compliance_overview,
        )
        from operations.compliance.selectors import (
            fleet_compliance_scores,
            fleet_compliance_total,
            framework_choices,
        )
        from tenants.catalogues import register_framework_choices
        from tenants.fleet import FleetColumn, register_fleet_column

        # The service plan's "frameworks in scope" offers the frameworks loaded here.
        register_framework_choices(framework_choices)
        register_fleet_column(
            FleetColumn(
                key="compliance",
                title="Compliance",
                order=40,
                figures=fleet_compliance_scores,
                total=fleet_compliance_total,
                help="The lowest framework's newest score, and its change since the last.",
            )
        )
