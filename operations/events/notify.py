"""Telling people: the owner of an endpoint that was disabled (email)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

from operations.events.conf import events_settings
from operations.events.models import WebhookEndpoint
from tenants.models import Membership, MspRole, TenantRole, User

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
