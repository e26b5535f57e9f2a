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
        from operations.compliance.selectors import framework_choices
        from tenants.catalogues import register_framework_choices

        # The service plan's "frameworks in scope" offers the frameworks loaded here.
        register_framework_choices(framework_choices)
