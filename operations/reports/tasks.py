"""Celery tasks of reports. Thin: the schedule's fan-out is a service per tenant."""

from __future__ import annotations

from celery import shared_task

from operations.reports.services import report_monthly_schedule_tenant, reports_monthly_tenants
from tenants.models import Tenant
from tenants.tasks import fleet_fan_out


@shared_task(name="reports.schedule_monthly", ignore_result=True)
def schedule_monthly() -> int:
    """Fleet: last month's report for each active tenant early in its month (once each), in
    chunks of tenants. Returns how many tenants were looked at."""
    tenant_ids = list(reports_monthly_tenants().values_list("pk", flat=True))
    fleet_fan_out(schedule_monthly_tenant, tenant_ids)
    return len(tenant_ids)


# Not TenantScopedTask: the submit opens its own scope and commits on its own, as a user's does.
@shared_task(name="reports.schedule_monthly_tenant", ignore_result=True)
def schedule_monthly_tenant(*, tenant_id: int) -> int | None:
    """Submit the tenant's report of last month if due; the run's id, or None."""
    if not isinstance(tenant_id, int):
        raise TypeError("reports.schedule_monthly_tenant takes an integer tenant_id")
    tenant = Tenant.objects.select_related("plan").filter(pk=tenant_id).first()
    return report_monthly_schedule_tenant(tenant=tenant) if tenant is not None else None
