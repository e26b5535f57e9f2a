"""Demo webhooks for a tenant: one endpoint with a delivery log to look at, and an escalation
policy for SEV1 and SEV2 (on the plan's hours, so a business-hours client is paged in its hours).

``seed_events(tenant)`` is idempotent (the endpoint is found by its URL; its log is made once;
the policy by its name).
The endpoint points at ``example.com``, so it is left disabled with a note: point it at a real
receiver and enable it in the portal. Emails about events need nothing: the demo's console
email backend prints them in the worker's output as incidents are raised.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from operations.events import services
from operations.events.models import (
    Delivery,
    DeliveryStatus,
    EscalationHours,
    EscalationPolicy,
    WebhookEndpoint,
)
from tenants.audit import AuditActor, audit_actor_unless_set
from tenants.models import Tenant, TenantStatus
from tenants.scoping import tenant_scope

DEMO_ACTOR = AuditActor(label="demo data", source="command")
DEMO_URL = "https://hooks.example.com/groundwork/{slug}"


def _log(tenant: Tenant, endpoint: WebhookEndpoint, now: dt.datetime) -> list[Delivery]:
    def body(topic: str, data: dict, at: dt.datetime) -> dict:
        return {
            "type": topic,
            "version": 1,
            "timestamp": at.isoformat(),
            "tenant": tenant.slug,
            "data": data,
        }

    rows = []
    for n, (topic, status, attempts, code, error, minutes_ago) in enumerate(
        [
            ("incident.opened", DeliveryStatus.SUCCEEDED, 1, 200, "", 600),
            ("incident.acknowledged", DeliveryStatus.SUCCEEDED, 1, 200, "", 590),
            ("finding.opened", DeliveryStatus.SUCCEEDED, 3, 200, "", 300),
            ("readiness.level_changed", DeliveryStatus.SUCCEEDED, 1, 200, "", 240),
            ("job.failed", DeliveryStatus.SUCCEEDED, 1, 200, "", 120),
            ("incident.resolved", DeliveryStatus.FAILED, 12, 503, "", 1500),
            ("webhook.test", DeliveryStatus.SUCCEEDED, 1, 204, "", 5),
        ]
    ):
        at = now - dt.timedelta(minutes=minutes_ago)
        rows.append(
            Delivery(
                tenant=tenant,
                endpoint=endpoint,
                event_id=None,
                message_id=f"msg_demo_{tenant.slug}_{n}",
                topic=topic,
                body=body(topic, {"message": "demo"}, at),
                status=status,
                attempts=attempts,
                last_attempt_at=at,
                succeeded_at=at if status == DeliveryStatus.SUCCEEDED else None,
                response_status=code,
                response_excerpt='{"ok":true}' if code < 300 else "Service Unavailable",
                error=error,
                latency_ms=40 + 7 * n,
            )
        )
    return rows


def seed_events(tenant: Tenant) -> int:
    """A demo endpoint and its log for an active tenant; returns how many rows were made."""
    if tenant.status != TenantStatus.ACTIVE:
        return 0
    url = DEMO_URL.format(slug=tenant.slug)
    made = 0
    with audit_actor_unless_set(DEMO_ACTOR), tenant_scope(tenant.id), transaction.atomic():
        endpoint = WebhookEndpoint.objects.filter(url=url).first()
        if endpoint is None:
            # Made directly, not through endpoint_create: example.com must not be resolved.
            endpoint = WebhookEndpoint.objects.create(
                tenant=tenant,
                url=url,
                description="Demo receiver (point it at yours, then enable it)",
                event_types=[
                    "incident.opened",
                    "incident.acknowledged",
                    "incident.resolved",
                    "finding.opened",
                    "readiness.level_changed",
                    "job.failed",
                    "report.ready",
                ],
                secret=services.secret_generate(),
                is_active=False,
                disabled_at=timezone.now(),
                disabled_reason="Demo endpoint: example.com receives nothing.",
            )
            made += 1
        if not Delivery.objects.filter(endpoint=endpoint).exists():
            now = timezone.now()
            rows = Delivery.objects.bulk_create(_log(tenant, endpoint, now))
            # created_at is auto_now_add: place the log in time as it happened.
            for row in rows:
                Delivery.objects.filter(pk=row.pk).update(created_at=row.last_attempt_at)
            made += len(rows)
        _, created = EscalationPolicy.objects.get_or_create(
            tenant=tenant,
            name="Demo: SEV1 and SEV2",
            defaults={
                "severities": ["SEV1", "SEV2"],
                "hours": EscalationHours.PLAN,
                "steps": [
                    {"after_minutes": 0, "notify": ["assigned_staff"]},
                    {"after_minutes": 30, "notify": ["tenant_admins"]},
                ],
            },
        )
        made += int(created)
    return made
