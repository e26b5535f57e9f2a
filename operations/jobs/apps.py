from importlib import import_module

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    name = "operations.jobs"
    label = "jobs"
    verbose_name = "Background jobs"

    def ready(self):
        from operations.jobs.conf import engine_settings
        from operations.jobs.services import job_schedules_sync_for_tenant
        from tenants.lifecycle import on_tenant_transition

        # Active tenants get nightly compliance and optimisation schedules; others pause them.
        on_tenant_transition(job_schedules_sync_for_tenant)

        # Every app's ``job_kinds`` module registers its kinds (this app's included).
        autodiscover_modules("job_kinds")
        for module in engine_settings().kind_modules:
            import_module(module)

        from operations.jobs.selectors import fleet_failed_runs
        from tenants.fleet import FleetColumn, register_fleet_column

        register_fleet_column(
            FleetColumn(
                key="failed_jobs",
                title="Failed jobs (24 h)",
                order=90,
                figures=fleet_failed_runs,
                help="Job runs that failed in the last 24 hours.",
            )
        )
