"""Telling people by email: about events (per their preferences), and the owner of an
endpoint that was disabled."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

from operations.events.conf import events_settings
from operations.events.models import WebhookEndpoint
from tenants.models import Membership, MspRole, Tenant, TenantRole, User

logger = logging.getLogger(__name__)


def endpoint_owner_emails(endpoint) -> list[str]:
    """Who hears that ``endpoint`` was disabled: whoever made it, else its tenant's admins
    (MSP admins for an MSP-wide endpoint)."""
    if endpoint.created_by_id:
        creator = User.objects.filter(pk=endpoint.created_by_id, is_active=True).first()
        if creator is not None and creator.email:
            return [creator.email]
    if isinstance(endpoint, WebhookEndpoint):
        admins = Membership.objects.filter(
            tenant_id=endpoint.tenant_id, role=TenantRole.ADMIN, user__is_active=True
        ).values_list("user__email", flat=True)
    else:
        admins = User.objects.filter(msp_role=MspRole.ADMIN, is_active=True).values_list(
            "email", flat=True
        )
    return sorted({email for email in admins if email})


def endpoint_disabled_notify(*, endpoint, reason: str) -> int:
    """Email the endpoint's owner that it was disabled; returns how many were told."""
    recipients = endpoint_owner_emails(endpoint)
    if not recipients:
        logger.warning("Webhook endpoint %s disabled; nobody to tell: %s", endpoint.pk, reason)
        return 0
    where = events_settings().site_url
    if isinstance(endpoint, WebhookEndpoint):
        where += f"/portal/{endpoint.tenant.slug}/webhooks/"
    else:
        where += "/admin/events/mspwebhookendpoint/"
    body = (
        f"Groundwork stopped delivering to the webhook endpoint {endpoint.url} "
        f"({endpoint.description or 'no description'}).\n\n{reason}\n\n"
        "Fix the receiver, then re-enable the endpoint and redeliver the failed messages: "
        f"{where}\n"
    )
    send_mail(
        subject=f"Webhook endpoint disabled: {endpoint.url}"[:150],
        message=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
        fail_silently=True,
    )
    return len(recipients)


# --- Email about events ---------------------------------------------------------------------------

#: Who is emailed without a preference row of their own: staff assigned to the tenant, and the
#: tenant's admins. A preference row (``NotificationPreference``) replaces the default.
DEFAULT_EVENTS = {
    "staff": frozenset(
        {
            "incident.opened",
            "incident.escalated",
            "incident.sla_at_risk",
            "incident.sla_breached",
            "incident.regulator_deadline_near",
        }
    ),
    # Tenant admins are the client's report recipients unless they choose otherwise.
    "tenant_admin": frozenset(
        {"incident.opened", "incident.resolved", "incident.sla_breached", "report.ready"}
    ),
}


def subject_ref_of(topic: str, payload: dict) -> str:
    """What an event is about, as ``kind:id`` (the incident page lists who heard of it)."""
    kind = topic.split(".", 1)[0]
    if kind in ("incident", "recommendation", "token") and payload.get("id") is not None:
        return f"{kind}:{payload['id']}"
    if kind == "finding" and payload.get("check"):
        return (
            f"finding:{payload['check']}:{payload.get('subject_type')}:{payload.get('subject_id')}"
        )
    return ""


def email_audience(*, tenant) -> list[tuple[int, str, frozenset | None, bool]]:
    """(user id, email, event types or None for the default, is staff) of everyone who may be
    emailed about ``tenant``'s events: its members, assigned staff, and anyone (an MSP admin)
    with a preference row in it."""
    from operations.events.models import NotificationPreference

    prefs = {
        pref.user_id: pref
        for pref in NotificationPreference.objects.filter(tenant=tenant).order_by("id")
    }
    people: dict[int, tuple[str, str]] = {}
    for user_id, email, role in Membership.objects.filter(
        tenant=tenant, user__is_active=True
    ).values_list("user_id", "user__email", "role"):
        people[user_id] = (email, role)
    for user_id, email in User.objects.filter(
        staff_assignments__tenant=tenant, is_active=True
    ).values_list("id", "email"):
        people[user_id] = (email, "staff")
    for user_id, email in User.objects.filter(
        pk__in=[uid for uid in prefs if uid not in people], msp_role=MspRole.ADMIN, is_active=True
    ).values_list("id", "email"):
        people[user_id] = (email, "staff")
    audience = []
    for user_id, (email, role) in people.items():
        if not email:
            continue
        pref = prefs.get(user_id)
        if pref is not None:
            wanted = frozenset(pref.event_types) if pref.email else frozenset()
        else:
            wanted = DEFAULT_EVENTS.get("staff" if role == "staff" else role, frozenset())
        if wanted:
            audience.append((user_id, email, wanted, role == "staff"))
    return audience


def notifications_for(*, tenant, events: list) -> list:
    """Notification rows (unsaved) for ``events`` of ``tenant``, per the audience's choices."""
    from operations.events.models import Notification, NotificationChannel

    audience = email_audience(tenant=tenant)
    rows = []
    for event in events:
        for user_id, email, wanted, _staff in audience:
            if event.topic in wanted:
                rows.append(
                    Notification(
                        tenant_id=tenant.id,
                        event_id=event.pk,
                        topic=event.topic,
                        subject_ref=subject_ref_of(event.topic, event.payload),
                        channel=NotificationChannel.EMAIL,
                        user_id=user_id,
                        recipient=email,
                        subject=email_subject(event.topic, event.payload, tenant.name),
                    )
                )
    return rows


def email_subject(topic: str, payload: dict, tenant_name: str) -> str:
    from operations.events.catalogue import CATALOGUE

    what = payload.get("reference") or payload.get("check") or payload.get("slug") or ""
    title = payload.get("title") or payload.get("subject_label") or ""
    known = CATALOGUE.get(topic)
    label = topic if known is None else topic.replace(".", " ").replace("_", " ")
    return f"[{tenant_name}] {label}: {what} {title}".strip()[:200]


def notifications_send_pending(*, tenant_id: int, limit: int = 200) -> int:
    """Email the tenant's pending notifications (outside any transaction); returns how many."""
    from django.core.mail import EmailMultiAlternatives
    from django.template.loader import render_to_string
    from django.utils import timezone

    from operations.events.catalogue import CATALOGUE
    from operations.events.delivery import event_link
    from operations.events.models import Notification, NotificationStatus, OutboxEvent
    from tenants.scoping import tenant_scope

    with tenant_scope(tenant_id):
        pending = list(
            Notification.objects.filter(status=NotificationStatus.PENDING).order_by("id")[:limit]
        )
        if not pending:
            return 0
        tenant_slug = Tenant.objects.filter(pk=tenant_id).values_list("slug", flat=True).first()
        payloads = dict(
            OutboxEvent.objects.filter(pk__in={n.event_id for n in pending}).values_list(
                "pk", "payload"
            )
        )
    sent = 0
    for notification in pending:
        payload = payloads.get(notification.event_id, {})
        known = CATALOGUE.get(notification.topic)
        context = {
            "subject": notification.subject,
            "topic": notification.topic,
            "description": known.description if known else "",
            "facts": [
                (key, payload[key])
                for key in (
                    "reference",
                    "title",
                    "severity",
                    "status",
                    "clock",
                    "check",
                    "subject_label",
                    "step",
                )
                if payload.get(key) not in (None, "")
            ],
            "link": event_link(
                {"type": notification.topic, "tenant": tenant_slug, "data": payload}
            ),
        }
        message = EmailMultiAlternatives(
            subject=notification.subject,
            body=render_to_string("events/email/event.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[notification.recipient],
        )
        message.attach_alternative(
            render_to_string("events/email/event.html", context), "text/html"
        )
        with tenant_scope(tenant_id):
            # Claimed before sending: two workers never email the same notification (an email
            # cannot be taken back, so at most once is the right side to err on).
            claimed = Notification.objects.filter(
                pk=notification.pk, status=NotificationStatus.PENDING
            ).update(status=NotificationStatus.SENT, sent_at=timezone.now())
        if not claimed:
            continue
        try:
            message.send()
        except Exception as exc:  # noqa: BLE001 - any mail failure is recorded, not raised
            status, error = NotificationStatus.FAILED, f"{type(exc).__name__}: {exc}"[:500]
        else:
            status, error = NotificationStatus.SENT, ""
            sent += 1
        if status != NotificationStatus.SENT:
            with tenant_scope(tenant_id):
                Notification.objects.filter(pk=notification.pk).update(status=status, error=error)
    return sent
