"""Writes of the delivery context: the outbox, webhook endpoints and their deliveries.

Events are recorded inside the transaction of the change they describe; delivering them is
the worker's (``operations.events.delivery``), after commit, so a slow or dead receiver never
holds up the write that produced the event.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import secrets
import socket
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from operations.events.catalogue import CATALOGUE, event_type
from operations.events.conf import events_settings
from operations.events.models import (
    Delivery,
    DeliveryStatus,
    EndpointKind,
    MspDelivery,
    MspWebhookEndpoint,
    NotificationPreference,
    OutboxEvent,
    WebhookEndpoint,
)
from tenants.audit import audit_changes, audit_record, audit_snapshot, audited_update
from tenants.models import AuditAction

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret


class OutboxOutsideTransaction(RuntimeError):
    """An event was recorded outside a transaction, so it could outlive a rolled-back change."""


# --- The outbox --------------------------------------------------------------------------------


def _normalised(payload: dict) -> dict:
    # Through JSON (datetimes become ISO strings): what is stored is what a publisher sends.
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


def event_record(*, tenant, topic: str, payload: dict) -> OutboxEvent:
    """Append one event for ``tenant`` to the outbox, in the caller's transaction.

    ``topic`` must be in the catalogue (``operations.events.catalogue``).
    """
    event_type(topic)
    if not connection.in_atomic_block:
        raise OutboxOutsideTransaction(
            f"event_record({topic!r}) must run inside the transaction of the change it describes."
        )
    return OutboxEvent.objects.create(tenant=tenant, topic=topic, payload=_normalised(payload))


def events_record_many(*, tenant, events: list[tuple[str, dict]]) -> int:
    """``event_record`` for many events in one insert (a scan's findings)."""
    if not events:
        return 0
    for topic, _payload in events:
        event_type(topic)
    if not connection.in_atomic_block:
        raise OutboxOutsideTransaction(
            "events_record_many must run inside the change's transaction."
        )
    rows = [OutboxEvent(tenant=tenant, topic=t, payload=_normalised(p)) for t, p in events]
    OutboxEvent.objects.bulk_create(rows, batch_size=500)
    return len(rows)


# --- Endpoint URLs (SSRF) -------------------------------------------------------------------------


def _address_refused(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def _url_parts_check(url: str):
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"url": "Use an http:// or https:// URL with a host name."})
    if parts.username or parts.password:
        raise ValidationError({"url": "Put credentials in the receiver, not in the URL."})
    return parts


def endpoint_address_resolve(url: str) -> str:
    """Check ``url`` and resolve its host once; returns the address to connect to.

    Refuses a URL that is not http(s), or whose host resolves to any loopback, link-local,
    private or otherwise non-public address unless ``WEBHOOKS_ALLOW_PRIVATE_ADDRESSES``.
    Delivery connects to the returned address (``delivery.PinnedAddressAdapter``), so a name
    that resolves differently a moment later (DNS rebinding) cannot redirect the request.
    """
    parts = _url_parts_check(url)
    try:
        infos = socket.getaddrinfo(
            parts.hostname, parts.port or 443, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise ValidationError({"url": f"The host {parts.hostname} does not resolve."}) from exc
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise ValidationError({"url": f"The host {parts.hostname} does not resolve."})
    if not events_settings().allow_private_addresses and any(map(_address_refused, addresses)):
        raise ValidationError(
            {
                "url": "The host resolves to a private, loopback or link-local address; "
                "webhooks go to public addresses only."
            }
        )
    return addresses[0]


def endpoint_url_check(url: str) -> None:
    """The check when a URL is saved (delivery resolves and checks it again, and connects to
    the address it checked). With private addresses allowed, a name need not resolve yet."""
    _url_parts_check(url)
    if not events_settings().allow_private_addresses:
        endpoint_address_resolve(url)


def _event_types_check(event_types) -> list[str]:
    event_types = list(dict.fromkeys(event_types or []))
    unknown = [name for name in event_types if name not in CATALOGUE]
    if unknown:
        raise ValidationError({"event_types": f"Not in the event catalogue: {', '.join(unknown)}."})
    return event_types


# --- Endpoints ----------------------------------------------------------------------------------
# One set of services for both kinds of endpoint: ``tenant`` None means MSP-wide.


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _endpoint_model(tenant):
    return MspWebhookEndpoint if tenant is None else WebhookEndpoint


def endpoint_create(
    *,
    tenant,
    url: str,
    kind: str = EndpointKind.WEBHOOK,
    description: str = "",
    event_types: list[str] | None = None,
    tenant_slugs: list[str] | None = None,
    created_by=None,
) -> tuple[WebhookEndpoint | MspWebhookEndpoint, str]:
    """Make an endpoint; returns it and its signing secret, which is shown once."""
    endpoint_url_check(url)
    fields = {
        "url": url,
        "kind": kind,
        "description": description,
        "event_types": _event_types_check(event_types),
        "secret": secret_generate(),
        "created_by": created_by if getattr(created_by, "is_authenticated", False) else None,
    }
    if tenant is None:
        fields["tenant_slugs"] = list(dict.fromkeys(tenant_slugs or []))
        endpoint = MspWebhookEndpoint(**fields)
    else:
        endpoint = WebhookEndpoint(tenant=tenant, **fields)
    endpoint.full_clean(exclude=["tenant"])
    endpoint.save()
    audit_record(
        tenant=tenant,
        action=AuditAction.CREATE,
        instance=endpoint,
        changes=audit_changes({}, audit_snapshot(endpoint)),
    )
    return endpoint, endpoint.secret


def endpoint_update(*, tenant, endpoint, **data):
    """Change an endpoint's URL, kind, description, filter or (MSP-wide) tenants; re-enabling
    it (``is_active=True``) clears why it was disabled."""
    if "url" in data:
        endpoint_url_check(data["url"])
    if "event_types" in data:
        data["event_types"] = _event_types_check(data["event_types"])
    if data.get("is_active") and not endpoint.is_active:
        data.update(disabled_at=None, disabled_reason="")
    if data.get("is_active") is False and endpoint.is_active:
        data.update(disabled_at=timezone.now(), disabled_reason="Disabled by hand.")
    return audited_update(tenant=tenant, instance=endpoint, data=data)


def endpoint_rotate_secret(*, tenant, endpoint, overlap_seconds: int | None = None):
    """A new secret; the old one keeps signing beside it for the overlap (default
    ``WEBHOOKS_SECRET_OVERLAP_SECONDS``), so receivers can switch without losing a message.
    Returns the endpoint and the new secret, shown once."""
    if overlap_seconds is None:
        overlap_seconds = events_settings().secret_overlap_seconds
    new_secret = secret_generate()
    audited_update(
        tenant=tenant,
        instance=endpoint,
        data={
            "previous_secret": endpoint.secret if overlap_seconds > 0 else "",
            "previous_secret_expires_at": (
                timezone.now() + dt.timedelta(seconds=overlap_seconds)
                if overlap_seconds > 0
                else None
            ),
            "secret": new_secret,
        },
        validate=False,
    )
    return endpoint, new_secret


def endpoint_delete(*, tenant, endpoint) -> None:
    audit_record(tenant=tenant, action=AuditAction.DELETE, instance=endpoint)
    endpoint.delete()


def endpoint_signing_secrets(endpoint, *, now: dt.datetime | None = None) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one
    during its overlap."""
    now = now or timezone.now()
    found = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        found.append(endpoint.previous_secret)
    return found


# --- Deliveries -----------------------------------------------------------------------------------


def _delivery_model(endpoint):
    return MspDelivery if isinstance(endpoint, MspWebhookEndpoint) else Delivery


def endpoint_send_test(*, tenant, endpoint, user=None):
    """Queue a ``webhook.test`` message to this endpoint alone; the worker sends it."""
    now = timezone.now()
    body = {
        "type": "webhook.test",
        "version": CATALOGUE["webhook.test"].version,
        "timestamp": now.isoformat(),
        "tenant": tenant.slug if tenant is not None else "",
        "data": {"message": "A test event from Groundwork.", "endpoint": endpoint.pk},
    }
    fields = {
        "endpoint": endpoint,
        "message_id": f"msg_test_{secrets.token_hex(8)}",
        "topic": "webhook.test",
        "body": body,
        "next_attempt_at": now,
    }
    if tenant is None:
        delivery = MspDelivery.objects.create(**fields)
    else:
        delivery = Delivery.objects.create(tenant=tenant, **fields)
    return delivery


def delivery_redeliver(*, tenant, delivery):
    """Send a delivery again (same message id and body), with a fresh retry budget."""
    model = type(delivery)
    model._default_manager.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        succeeded_at=None,
        claimed_by="",
    )
    audit_record(
        tenant=tenant,
        action=AuditAction.UPDATE,
        instance=delivery,
        changes={"status": [delivery.status, DeliveryStatus.PENDING]},
    )
    delivery.refresh_from_db()
    return delivery


def endpoint_redeliver_failed(*, tenant, endpoint) -> int:
    """Redeliver every failed delivery of ``endpoint``; returns how many."""
    model = _delivery_model(endpoint)
    count = model._default_manager.filter(endpoint=endpoint, status=DeliveryStatus.FAILED).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now(), claimed_by=""
    )
    if count:
        audit_record(
            tenant=tenant,
            action=AuditAction.UPDATE,
            instance=endpoint,
            changes={"redelivered_failed": [None, count]},
        )
    return count


@transaction.atomic
def endpoint_disable_for_failures(*, endpoint, reason: str, now: dt.datetime) -> bool:
    """Disable an endpoint whose delivery ran out of retries; True if this call disabled it
    (its owner is told once, by the caller)."""
    model = type(endpoint)
    manager = model.objects.unscoped() if model is WebhookEndpoint else model.objects
    changed = manager.filter(pk=endpoint.pk, is_active=True).update(
        is_active=False, disabled_at=now, disabled_reason=reason[:300]
    )
    return bool(changed)


# --- Notification preferences ------------------------------------------------------------------


def notification_preference_set(
    *, tenant, user, event_types: list[str] | None = None, email: bool = True
) -> NotificationPreference:
    """Create or change ``user``'s email settings in ``tenant`` (one row per person and tenant)."""
    event_types = _event_types_check(event_types)
    existing = NotificationPreference.objects.filter(tenant=tenant, user=user).first()
    if existing is not None:
        return audited_update(
            tenant=tenant, instance=existing, data={"event_types": event_types, "email": email}
        )
    preference = NotificationPreference.objects.create(
        tenant=tenant, user=user, event_types=event_types, email=email
    )
    audit_record(
        tenant=tenant,
        action=AuditAction.CREATE,
        instance=preference,
        changes=audit_changes({}, audit_snapshot(preference)),
    )
    return preference


def notification_preference_delete(*, tenant, preference: NotificationPreference) -> None:
    audit_record(tenant=tenant, action=AuditAction.DELETE, instance=preference)
    preference.delete()
