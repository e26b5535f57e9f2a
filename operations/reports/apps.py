from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "operations.reports"
    label = "reports"
    verbose_name = "Reports"

    def ready(self):
        # The system check that says when PDFs cannot be made (Pango missing) and how to fix it.
        import operations.reports.pdf  # noqa: F401
