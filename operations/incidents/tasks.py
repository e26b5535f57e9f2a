"""Scheduled incident work: the SLA breach scan and the alert rule evaluation, fleet-wide and
per tenant.

Beat runs ``incidents.sla_breach_scan`` every minute; it finds the tenants with a clock that has
run out and has ``incidents.sla_breach_scan_tenant`` run for each, in chunks of tenants
(``fleet_fan_out``). Running either twice at
the same moment is harmless: each breach is marked exactly once (see the service).

Beat also runs ``incidents.alert_rules_evaluate_fleet`` every minute: one
``incidents.alert_rules_evaluate_tenant`` per tenant (offboarded ones aside) with a rule in
force, run in chunks of tenants. Evaluations of a tenant are serialised and idempotent (see
``alert_rules_evaluate``).
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from operations.incidents.alerting import alert_rules_evaluate
from operations.incidents.models import OPEN_STATUSES, Incident, IncidentStatus
from operations.incidents.selectors import alert_tenants_to_evaluate
from operations.incidents.services import incident_sla_breaches_mark
from tenants.models import Tenant
from tenants.scoping import all_tenants_scope
from tenants.tasks import TenantScopedTask, fleet_fan_out

logger = logging.getLogger(__name__)


def tenants_with_due_clocks(now: dt.datetime | None = None) -> list[int]:
    """Ids of the tenants with an unbreached SLA clock that has run out (the fan-out list)."""
    now = now or timezone.now()
    ack_due = Q(status=IncidentStatus.TRIGGERED, ack_breached_at__isnull=True, ack_due_at__lte=now)
    resolve_due = Q(
        status__in=OPEN_STATUSES,
        waiting_since__isnull=True,
        resolve_breached_at__isnull=True,
        resolve_due_at__lte=now,
    )
    with all_tenants_scope(include_offboarded=False) as tenant_ids:
        if not tenant_ids:
            return []
        due = Incident.objects.filter(ack_due | resolve_due).order_by()
        return sorted(set(due.values_list("tenant_id", flat=True)))


@shared_task(name="incidents.sla_breach_scan", ignore_result=True)
def sla_breach_scan() -> int:
    """Fleet: a breach scan for every tenant that has a clock to mark, in chunks of tenants."""
    tenant_ids = tenants_with_due_clocks()
    fleet_fan_out(sla_breach_scan_tenant, tenant_ids)
    if tenant_ids:
        logger.info("SLA breach scan enqueued for %d tenant(s)", len(tenant_ids))
    return len(tenant_ids)


@shared_task(base=TenantScopedTask, name="incidents.sla_breach_scan_tenant", ignore_result=True)
def sla_breach_scan_tenant(*, tenant_id: int) -> int:
    """Mark the breaches of one tenant; returns how many this run marked."""
    tenant = Tenant.objects.get(pk=tenant_id)
    return incident_sla_breaches_mark(tenant=tenant)


@shared_task(name="incidents.alert_rules_evaluate_fleet", ignore_result=True)
def alert_rules_evaluate_fleet() -> int:
    """Fleet: evaluate every tenant with a rule in force, in chunks of tenants."""
    tenant_ids = alert_tenants_to_evaluate()
    fleet_fan_out(alert_rules_evaluate_tenant, tenant_ids)
    return len(tenant_ids)


@shared_task(
    base=TenantScopedTask, name="incidents.alert_rules_evaluate_tenant", ignore_result=True
)
def alert_rules_evaluate_tenant(*, tenant_id: int) -> dict:
    """Evaluate one tenant's rules now; returns how many of each outcome."""
    tenant = Tenant.objects.get(pk=tenant_id)
    evaluation = alert_rules_evaluate(tenant=tenant)
    counts = evaluation.as_dict()["counts"]
    if counts["opened"] or counts["resolved"]:
        logger.info("alert rules of tenant %s: %s", tenant_id, counts)
    return counts
