"""Reads of the outbox, the endpoints and their deliveries."""

from __future__ import annotations

from django.db.models import QuerySet

from operations.events.models import Delivery, OutboxEvent, WebhookEndpoint


def outbox_pending(*, tenant) -> QuerySet[OutboxEvent]:
    """Events of ``tenant`` not yet published, oldest first."""
    return OutboxEvent.objects.filter(tenant=tenant, published_at__isnull=True).order_by(
        "created_at", "id"
    )


def deliveries_with_endpoints(queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
    return queryset.select_related("endpoint")


def webhook_endpoint_list(*, tenant) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(tenant=tenant).order_by("id")


def webhook_endpoint_get(*, tenant, endpoint_id: int) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.filter(tenant=tenant, pk=endpoint_id).first()


def delivery_list(*, tenant, endpoint=None, limit: int = 50) -> list[Delivery]:
    deliveries = Delivery.objects.filter(tenant=tenant)
    if endpoint is not None:
        deliveries = deliveries.filter(endpoint=endpoint)
    return list(deliveries.select_related("endpoint").order_by("-created_at", "-id")[:limit])
