"""Celery tasks of the delivery context: thin, ids only.

Beat runs ``events.publish_outbox`` every few seconds: ``events.publish_tenant`` for each tenant
with unpublished events (in chunks of tenants, ``fleet_fan_out``), which publishes them and
sends the new deliveries at once. ``events.send_due`` (retries, redeliveries, test events) fans
out the same way, and ``events.prune`` deletes what retention allows, tenant by tenant. All are
idempotent: a delivery is claimed by a conditional update, so a duplicate task sends nothing
twice.
"""

from __future__ import annotations

import logging

from celery import shared_task

from operations.events import delivery
from operations.events.escalation import escalations_run_for_tenant
from operations.events.notify import notifications_send_pending
from operations.incidents.selectors import tenants_with_open_incidents
from tenants.models import Tenant
from tenants.tasks import fleet_fan_out

logger = logging.getLogger(__name__)


@shared_task(name="events.publish_outbox", ignore_result=True)
def publish_outbox() -> int:
    """Fleet: publish for every tenant with unpublished events, in chunks of tenants."""
    tenant_ids = delivery.tenants_with_pending_events()
    fleet_fan_out(publish_tenant, tenant_ids)
    return len(tenant_ids)


# Not TenantScopedTask: that holds one transaction for the whole task, and sending must happen
# outside any transaction. The services open their own scopes, briefly.
@shared_task(name="events.publish_tenant", ignore_result=True)
def publish_tenant(*, tenant_id: int) -> dict:
    """Publish the tenant's pending events, then send what is due (the new deliveries)."""
    if not isinstance(tenant_id, int):
        raise TypeError("events.publish_tenant takes an integer tenant_id")
    if not Tenant.objects.filter(pk=tenant_id).exists():
        return {}
    published = delivery.outbox_publish_tenant(tenant_id=tenant_id)
    sent = delivery.deliveries_send_due(tenant_id=tenant_id)
    emailed = notifications_send_pending(tenant_id=tenant_id)
    slug = Tenant.objects.filter(pk=tenant_id).values_list("slug", flat=True).first()
    msp_sent = delivery.msp_deliveries_send_due(tenant_slug=slug) if slug else {}
    return {"published": published, "sent": sent, "msp_sent": msp_sent, "emailed": emailed}


@shared_task(name="events.send_due", ignore_result=True)
def send_due() -> int:
    """Fleet: send for every tenant with due deliveries (in chunks), and one task for the
    MSP-wide endpoints."""
    tenant_ids = delivery.tenants_with_due_deliveries()
    fleet_fan_out(send_tenant_due, tenant_ids)
    if delivery.msp_deliveries_due():
        send_msp_due.delay()
    return len(tenant_ids)


@shared_task(name="events.send_tenant_due", ignore_result=True)
def send_tenant_due(*, tenant_id: int) -> dict:
    if not isinstance(tenant_id, int):
        raise TypeError("events.send_tenant_due takes an integer tenant_id")
    if not Tenant.objects.filter(pk=tenant_id).exists():
        return {}
    sent = delivery.deliveries_send_due(tenant_id=tenant_id)
    sent["emailed"] = notifications_send_pending(tenant_id=tenant_id)
    return sent


@shared_task(name="events.send_msp_due", ignore_result=True)
def send_msp_due() -> dict:
    return delivery.msp_deliveries_send_due()


@shared_task(name="events.prune", ignore_result=True)
def prune() -> dict:
    """Fleet: prune the MSP-wide deliveries here, each tenant's outbox and deliveries in chunks
    (one statement over the whole fleet's rows would grow with it)."""
    pruned = delivery.msp_deliveries_prune()
    tenant_ids = list(Tenant.objects.order_by("pk").values_list("pk", flat=True))
    fleet_fan_out(prune_tenant, tenant_ids)
    logger.info("Events pruned: %s MSP-wide deliveries; %d tenants next", pruned, len(tenant_ids))
    return {"msp_deliveries": pruned, "tenants": len(tenant_ids)}


@shared_task(name="events.prune_tenant", ignore_result=True)
def prune_tenant(*, tenant_id: int) -> dict:
    """Delete one tenant's published outbox rows and finished deliveries past retention."""
    if not isinstance(tenant_id, int):
        raise TypeError("events.prune_tenant takes an integer tenant_id")
    return delivery.outbox_prune_tenant(tenant_id=tenant_id)


@shared_task(name="events.escalations_fleet", ignore_result=True)
def escalations_fleet() -> int:
    """Fleet: an escalation scan for every tenant with an open incident, in chunks."""
    tenant_ids = tenants_with_open_incidents()
    fleet_fan_out(escalations_tenant, tenant_ids)
    return len(tenant_ids)


@shared_task(name="events.escalations_tenant", ignore_result=True)
def escalations_tenant(*, tenant_id: int) -> dict:
    """Fire the tenant's due escalation steps and warnings (each once), then send them."""
    if not isinstance(tenant_id, int):
        raise TypeError("events.escalations_tenant takes an integer tenant_id")
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return {}
    fired = escalations_run_for_tenant(tenant=tenant)
    if any(fired.values()):
        fired["emailed"] = notifications_send_pending(tenant_id=tenant_id)
    return fired
