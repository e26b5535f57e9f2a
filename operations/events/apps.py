from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "operations.events"
    label = "events"
    verbose_name = "Integration events"

    def ready(self):
        from operations.events.hooks import job_failed, tenant_status_changed, token_created
        from operations.jobs.lifecycle import on_job_failed
        from tenants.lifecycle import on_tenant_transition, on_token_issued

        on_tenant_transition(tenant_status_changed)
        on_token_issued(token_created)
        on_job_failed(job_failed)
