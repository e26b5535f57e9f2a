"""Reads of the outbox, the endpoints and their deliveries."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from operations.events.models import (
    Delivery,
    Notification,
    NotificationPreference,
    OutboxEvent,
    WebhookEndpoint,
)


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


@dataclass(frozen=True)
class NotificationRecord:
    """One "who was told, how, when" line for an object's page."""

    at: object
    topic: str
    channel: str
    recipient: str
    status: str


def notifications_about(*, tenant, subject_ref: str, limit: int = 100) -> list[NotificationRecord]:
    """Who was told about ``subject_ref`` (e.g. ``incident:12``): emails to people and
    deliveries to the tenant's endpoints, newest first. MSP-wide endpoints are not listed:
    they are the MSP's own systems, not the tenant's."""
    emails = Notification.objects.filter(tenant=tenant, subject_ref=subject_ref).values_list(
        "created_at", "sent_at", "topic", "channel", "recipient", "status"
    )[:limit]
    records = [
        NotificationRecord(sent or created, topic, channel, recipient, status)
        for created, sent, topic, channel, recipient, status in emails
    ]
    deliveries = (
        Delivery.objects.filter(tenant=tenant, subject_ref=subject_ref)
        .select_related("endpoint")
        .only(
            "created_at",
            "succeeded_at",
            "last_attempt_at",
            "topic",
            "status",
            "endpoint__url",
            "endpoint__kind",
        )[:limit]
    )
    records += [
        NotificationRecord(
            d.succeeded_at or d.last_attempt_at or d.created_at,
            d.topic,
            d.endpoint.get_kind_display(),
            d.endpoint.url,
            d.status,
        )
        for d in deliveries
    ]
    return sorted(records, key=lambda record: record.at, reverse=True)[:limit]


def on_call_rows(*, now=None) -> list[dict]:
    """Who holds each on-call rotation now (the staff UI and ``GET /api/v1/oncall/``)."""
    from operations.events.escalation import on_call_all
    from tenants.models import User

    holders = on_call_all(now=now)
    people = {
        user.pk: user
        for user in User.objects.filter(pk__in=[h.user_id for h in holders if h.user_id])
    }
    rows = []
    for holder in holders:
        person = people.get(holder.user_id)
        rows.append(
            {
                "rotation": holder.rotation.name,
                "shift": holder.rotation.shift,
                "user": person.get_username() if person else None,
                "name": person.get_full_name() if person else "",
                "email": person.email if person else "",
                "until": holder.until,
                "override": holder.override,
            }
        )
    return rows


@dataclass(frozen=True)
class EmailSettings:
    """What ``user`` is emailed about in a tenant, and whether it is their choice or the
    default of their role (``notify.DEFAULT_EVENTS``)."""

    event_types: frozenset[str]
    email: bool
    chosen: bool


def notification_preference_get(*, tenant, user) -> NotificationPreference | None:
    return NotificationPreference.objects.filter(tenant=tenant, user=user).first()


def email_settings_for(*, tenant, user) -> EmailSettings:
    from operations.events.notify import email_audience

    preference = notification_preference_get(tenant=tenant, user=user)
    if preference is not None:
        return EmailSettings(frozenset(preference.event_types), preference.email, True)
    wanted = next(
        (w for uid, _email, w, _staff in email_audience(tenant=tenant) if uid == user.pk),
        frozenset(),
    )
    return EmailSettings(frozenset(wanted), bool(wanted), False)
