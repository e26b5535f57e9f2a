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
