"""Reads of the outbox."""

from __future__ import annotations

from django.db.models import QuerySet

from operations.events.models import OutboxEvent


def outbox_pending(*, tenant) -> QuerySet[OutboxEvent]:
    """Events of ``tenant`` not yet published, oldest first."""
    return OutboxEvent.objects.filter(tenant=tenant, published_at__isnull=True).order_by(
        "created_at", "id"
    )
