"""Scheduled telemetry work: hourly rollups, retention, partitions and (VictoriaMetrics) GPU
discovery.

Fleet tasks find the tenants with work and fan out in chunks (``tenants.tasks.fleet_fan_out``),
each chunk running the tenant task (taking ``tenant_id``, run in that tenant's scope by
``TenantScopedTask``) for its tenants; every task is idempotent, so a redelivered
or overlapping run is harmless. The schedule is in ``celery_config.TELEMETRY_BEAT_SCHEDULE``.
"""

from __future__ import annotations

import logging

from celery import shared_task

from operations.telemetry import forwarding, services
from operations.telemetry.selectors import telemetry_tenants_with_pending_rollups
from tenants.models import Tenant
from tenants.tasks import TenantScopedTask, fleet_fan_out

logger = logging.getLogger(__name__)


@shared_task(name="telemetry.rollup_fleet", ignore_result=True)
def rollup_fleet() -> int:
    """Fleet: roll up every tenant with hours waiting, in chunks of tenants."""
    tenant_ids = telemetry_tenants_with_pending_rollups()
    fleet_fan_out(rollup_tenant, tenant_ids)
    return len(tenant_ids)


@shared_task(base=TenantScopedTask, name="telemetry.rollup_tenant", ignore_result=True)
def rollup_tenant(*, tenant_id: int) -> dict:
    """Recompute the hours of one tenant that received samples since their last rollup."""
    return services.telemetry_rollup_pending(tenant=Tenant.objects.get(pk=tenant_id))


@shared_task(name="telemetry.retention_fleet", ignore_result=True)
def retention_fleet() -> dict:
    """Fleet: drop expired partitions (PostgreSQL), then enforce each tenant's retention."""
    dropped = services.telemetry_partitions_drop_expired()
    if dropped:
        logger.info("telemetry retention dropped partitions %s", ", ".join(dropped))
    tenant_ids = list(Tenant.objects.order_by("pk").values_list("pk", flat=True))
    fleet_fan_out(retention_tenant, tenant_ids)
    return {"dropped_partitions": dropped, "tenants": len(tenant_ids)}


@shared_task(base=TenantScopedTask, name="telemetry.retention_tenant", ignore_result=True)
def retention_tenant(*, tenant_id: int) -> dict:
    """Delete one tenant's raw samples and rollups older than its retention."""
    return services.telemetry_retention_enforce(tenant=Tenant.objects.get(pk=tenant_id))


@shared_task(name="telemetry.gpus_discover_fleet", ignore_result=True)
def gpus_discover_fleet() -> int:
    """Fleet (VictoriaMetrics only): learn new GPUs from each tenant's dcgm series, in chunks
    of tenants. Nothing to do on the built-in store (ingest learns them)."""
    if not forwarding.telemetry_forwarding():
        return 0
    tenant_ids = list(Tenant.objects.order_by("pk").values_list("pk", flat=True))
    fleet_fan_out(gpus_discover_tenant, tenant_ids)
    return len(tenant_ids)


@shared_task(base=TenantScopedTask, name="telemetry.gpus_discover_tenant", ignore_result=True)
def gpus_discover_tenant(*, tenant_id: int) -> dict:
    """Learn one tenant's new GPUs from its dcgm series in VictoriaMetrics."""
    return forwarding.telemetry_gpus_discover(tenant=Tenant.objects.get(pk=tenant_id))


@shared_task(name="telemetry.partitions_ensure", ignore_result=True)
def partitions_ensure() -> list[str]:
    """Make the daily sample partitions ahead of time (PostgreSQL; nothing on SQLite)."""
    return services.telemetry_partitions_ensure()
