"""Email about events (Django's test outbox) per preferences, and Slack and Teams bodies."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from django.db import transaction

from operations.events import delivery as publisher
from operations.events import services
from operations.events.models import Notification, NotificationStatus
from operations.events.notify import notifications_send_pending
from operations.incidents.models import IncidentCategory
from operations.incidents.services import incident_create
from tenants.models import MspRole, Severity, TenantRole
from tenants.scoping import tenant_scope
from tests.events.receiver import WebhookReceiver
from tests.factories import make_member, make_staff

pytestmark = pytest.mark.django_db


def open_incident(tenant):
    with tenant_scope(tenant.id):
        return incident_create(
            tenant=tenant,
            title="GPU node down",
            category=IncidentCategory.OUTAGE,
            severity=Severity.SEV1,
        )


def publish_and_email(tenant):
    publisher.outbox_publish_tenant(tenant_id=tenant.id)
    return notifications_send_pending(tenant_id=tenant.id)


def test_assigned_staff_and_tenant_admins_are_emailed_by_default_with_html_and_a_link(
    tenant_a, tenant_b
):
    admin = make_member(tenant_a, TenantRole.ADMIN, username="acme-boss")
    make_member(tenant_a, TenantRole.VIEWER, username="acme-viewer")
    engineer = make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-a")
    make_staff(tenant_b, role=MspRole.ENGINEER, username="eng-b")
    incident = open_incident(tenant_a)

    assert publish_and_email(tenant_a) == 2

    assert sorted(m.to[0] for m in mail.outbox) == sorted([admin.email, engineer.email])
    message = mail.outbox[0]
    assert incident.reference in message.subject
    link = f"/portal/{tenant_a.slug}/incidents/{incident.number}/"
    assert link in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert link in html
    with tenant_scope(tenant_a.id):
        rows = Notification.objects.filter(subject_ref=f"incident:{incident.pk}")
        assert {row.status for row in rows} == {NotificationStatus.SENT}
        assert rows.count() == 2


def test_preferences_choose_events_and_staff_choose_tenants(tenant_a, tenant_b):
    admin = make_member(tenant_a, TenantRole.ADMIN, username="acme-boss")
    boss = make_staff(role=MspRole.ADMIN, username="msp-boss")  # sees every tenant
    with tenant_scope(tenant_a.id), transaction.atomic():
        # The tenant admin turns email off; the MSP admin opts in to tenant A only.
        services.notification_preference_set(tenant=tenant_a, user=admin, email=False)
        services.notification_preference_set(
            tenant=tenant_a, user=boss, event_types=["incident.opened"]
        )
    open_incident(tenant_a)
    open_incident(tenant_b)
    publish_and_email(tenant_a)
    publish_and_email(tenant_b)
    assert [m.to for m in mail.outbox] == [[boss.email]]


@pytest.mark.parametrize("kind", ["slack", "teams"])
def test_chat_endpoints_get_their_message_format(settings, kind, tenant_a):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    receiver = WebhookReceiver()
    try:
        with tenant_scope(tenant_a.id), transaction.atomic():
            services.endpoint_create(tenant=tenant_a, url=receiver.url, kind=kind)
        incident = open_incident(tenant_a)
        publisher.outbox_publish_tenant(tenant_id=tenant_a.id)
        publisher.deliveries_send_due(tenant_id=tenant_a.id)
    finally:
        receiver.close()
    [got] = receiver.received
    body = json.loads(got.body)
    link = f"/portal/{tenant_a.slug}/incidents/{incident.number}/"
    if kind == "slack":
        assert incident.reference in body["text"]
        assert link in body["blocks"][0]["text"]["text"]
    else:
        card = body["attachments"][0]["content"]
        assert body["type"] == "message"
        assert card["type"] == "AdaptiveCard"
        assert incident.reference in card["body"][0]["text"]
        assert link in card["actions"][0]["url"]


def test_the_incident_page_and_admin_show_who_was_notified_how_and_when(
    settings, tenant_a, admin_a_signed_in
):
    from tests.factories import login_verified

    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    engineer = make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-a")
    receiver = WebhookReceiver()
    try:
        with tenant_scope(tenant_a.id), transaction.atomic():
            services.endpoint_create(tenant=tenant_a, url=receiver.url)
        incident = open_incident(tenant_a)
        publisher.outbox_publish_tenant(tenant_id=tenant_a.id)
        publisher.deliveries_send_due(tenant_id=tenant_a.id)
        notifications_send_pending(tenant_id=tenant_a.id)
    finally:
        receiver.close()

    page = admin_a_signed_in.client.get(f"/portal/{tenant_a.slug}/incidents/{incident.number}/")
    text = page.content.decode()
    assert "Who was notified" in text
    assert engineer.email in text
    assert receiver.url in text

    boss = make_staff(role=MspRole.ADMIN, username="msp-boss")
    from django.test import Client

    client = Client()
    login_verified(client, boss)
    admin_page = client.get(f"/admin/incidents/incident/{incident.pk}/change/")
    assert admin_page.status_code == 200
    assert engineer.email in admin_page.content.decode()


def test_a_published_report_is_emailed_to_the_tenant_admins_by_default(tenant_a):
    admin = make_member(tenant_a, TenantRole.ADMIN, username="acme-boss")
    make_member(tenant_a, TenantRole.VIEWER, username="acme-viewer")
    make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-a")
    payload = {
        "id": 7,
        "tenant": tenant_a.slug,
        "kind": "monthly",
        "period_start": "2026-11-01",
        "period_end": "2026-12-01",
        "period": "2026-11",
        "version": 1,
        "download_url": "https://groundwork.example/api/v1/tenants/acme/reports/7/download",
        "url": "https://groundwork.example/portal/acme/reports/",
    }
    with tenant_scope(tenant_a.id), transaction.atomic():
        services.event_record(tenant=tenant_a, topic="report.ready", payload=payload)

    assert publish_and_email(tenant_a) == 1
    assert [m.to[0] for m in mail.outbox] == [admin.email]
    # The payload's own "tenant" field does not break the link to the reports page.
    assert f"/portal/{tenant_a.slug}/reports/" in mail.outbox[0].body
