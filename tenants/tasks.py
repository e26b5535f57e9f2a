"""The base for tenant-scoped Celery tasks, and the chunked fan-out of periodic fleet work.

Tasks take a ``tenant_id`` keyword and other ids, never model instances (the JSON serializer
refuses them anyway). The base re-fetches nothing on the caller's behalf: it checks the tenant
still exists, then runs the task inside that tenant's scope with a job actor for the audit log.

A periodic fleet task (beat) lists the tenants with work and calls ``fleet_fan_out``: one
``tenants.fleet_chunk`` message per ``FLEET_CHUNK_SIZE`` tenants, not one task looping over the
whole fleet nor one message per tenant.
"""

from __future__ import annotations

import logging

from celery import Task, current_app, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from msp.api.errors import DependencyUnavailable
from tenants.audit import AUTOMATIC_LABEL, AuditActor, audit_actor
from tenants.models import Tenant
from tenants.scoping import tenant_scope

logger = logging.getLogger(__name__)


class TenantScopedTask(Task):
    """Use as ``@shared_task(base=TenantScopedTask)``; call with ``tenant_id=<int>``."""

    def __call__(self, *args, tenant_id: int, **kwargs):
        if not isinstance(tenant_id, int):
            raise TypeError(f"{self.name}: tenant_id must be an int, got {type(tenant_id)!r}")
        if not Tenant.objects.filter(pk=tenant_id).exists():
            # Gone since it was enqueued: nothing to do, nothing to retry.
            logger.info("%s: tenant %s no longer exists; skipping", self.name, tenant_id)
            return None
        actor = AuditActor(label=AUTOMATIC_LABEL, source="job")
        with audit_actor(actor), tenant_scope(tenant_id):
            return super().__call__(*args, tenant_id=tenant_id, **kwargs)


# --- Fleet fan-out in chunks ---------------------------------------------------------------------

#: Per-tenant tasks a fleet chunk may run (a message naming anything else is refused).
FLEET_TENANT_TASKS = frozenset(
    {
        "telemetry.rollup_tenant",
        "telemetry.retention_tenant",
        "telemetry.gpus_discover_tenant",
        "incidents.sla_breach_scan_tenant",
        "incidents.alert_rules_evaluate_tenant",
        "events.publish_tenant",
        "events.send_tenant_due",
        "events.escalations_tenant",
        "events.prune_tenant",
        "reports.schedule_monthly_tenant",
    }
)


def fleet_chunks(tenant_ids: list[int], size: int | None = None) -> list[list[int]]:
    """``tenant_ids`` in chunks of at most ``size`` (``settings.FLEET_CHUNK_SIZE``)."""
    size = size or settings.FLEET_CHUNK_SIZE
    return [tenant_ids[start : start + size] for start in range(0, len(tenant_ids), size)]


def fleet_fan_out(task: Task, tenant_ids: list[int]) -> int:
    """Enqueue one ``tenants.fleet_chunk`` per chunk of tenants, each running ``task`` for its
    tenants in turn: the fleet task sends ceil(N / chunk) messages, and no task's work grows
    past a chunk's, however large the fleet. Returns how many chunks were enqueued."""
    if task.name not in FLEET_TENANT_TASKS:
        raise ValueError(f"{task.name} is not a per-tenant fleet task")
    chunks = fleet_chunks(list(tenant_ids))
    for chunk in chunks:
        # Routed to ``task``'s own queue (msp/queues.py reads the ``task`` argument).
        fleet_chunk.apply_async(kwargs={"task": task.name, "tenant_ids": chunk})
    return len(chunks)


@shared_task(name="tenants.fleet_chunk", ignore_result=True)
def fleet_chunk(*, task: str, tenant_ids: list[int]) -> dict:
    """Run the per-tenant task ``task`` for each of ``tenant_ids``, in this worker process.

    One tenant's failure is logged and the rest still run: every fleet task is idempotent and
    runs again at its next tick. A time limit is not swallowed: it ends the chunk. A dependency
    out of reach (``DependencyUnavailable``: the telemetry store) ends it too, the tenants left
    counted as failed, since each would wait for the same timeout.
    """
    if task not in FLEET_TENANT_TASKS:
        raise ValueError(f"tenants.fleet_chunk does not run {task!r}")
    if not isinstance(tenant_ids, list) or not all(isinstance(t, int) for t in tenant_ids):
        raise TypeError("tenants.fleet_chunk takes a list of integer tenant ids")
    per_tenant = current_app.tasks[task]
    done, failed = 0, []
    for position, tenant_id in enumerate(tenant_ids):
        try:
            per_tenant(tenant_id=tenant_id)
        except SoftTimeLimitExceeded:
            raise
        except DependencyUnavailable as exc:
            # Out of reach for every tenant alike: the rest wait for the next tick rather than
            # each for the same timeout; one line, no traceback (the task left its work).
            failed.extend(tenant_ids[position:])
            logger.warning(
                "%s stopped (fleet chunk): %s %d tenant(s) left for the next run",
                task,
                exc,
                len(tenant_ids) - position,
            )
            break
        except Exception:  # noqa: BLE001 - one tenant's error must not starve the chunk's others
            logger.exception("%s failed for tenant %s (fleet chunk)", task, tenant_id)
            failed.append(tenant_id)
        else:
            done += 1
    return {"task": task, "done": done, "failed": failed}
