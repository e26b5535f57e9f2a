"""The integration-events outbox: one row per event, written in the transaction of the change."""

from __future__ import annotations

from django.db import models

from tenants.scoping import TenantOwnedModel


class OutboxEvent(TenantOwnedModel):
    """Something integrations may hear about (``incident.created``, ``incident.breached``, …).

    ``payload`` holds client-visible data only: it is what a client's webhook will receive.
    ``published_at`` stays empty until a publisher (signed webhooks, a later issue) sends it.
    """

    topic = models.CharField(max_length=100, db_index=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["created_at", "id"],
                condition=models.Q(published_at__isnull=True),
                name="events_outbox_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk}"
