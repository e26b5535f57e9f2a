"""The delivery tasks, run in-process: publish, send, email; left-over emails are found."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from operations.events import delivery as publisher
from operations.events import services
from operations.events.models import Notification, NotificationStatus
from operations.events.notify import notifications_send_pending
from operations.events.tasks import publish_tenant, send_tenant_due
from operations.incidents.models import IncidentCategory
from operations.incidents.services import incident_create
from tenants.models import MspRole, Severity
from tenants.scoping import tenant_scope
from tests.events.receiver import WebhookReceiver
from tests.factories import make_staff

pytestmark = pytest.mark.django_db


def test_publish_tenant_delivers_and_emails_once(settings, tenant_a):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    engineer = make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-a")
    receiver = WebhookReceiver()
    try:
        with tenant_scope(tenant_a.id), transaction.atomic():
            services.endpoint_create(tenant=tenant_a, url=receiver.url)
        with tenant_scope(tenant_a.id):
            incident_create(
                tenant=tenant_a,
                title="Down",
                category=IncidentCategory.OUTAGE,
                severity=Severity.SEV1,
            )
        result = publish_tenant(tenant_id=tenant_a.id)
        again = send_tenant_due(tenant_id=tenant_a.id)
    finally:
        receiver.close()
    assert result["published"] == 1
    assert result["sent"]["succeeded"] == 1
    assert result["emailed"] == 1
    assert again == {"sent": 0, "succeeded": 0, "failed": 0, "gave_up": 0, "emailed": 0}
    assert len(receiver.received) == 1
    assert [m.to for m in mail.outbox] == [[engineer.email]]
    # A second sender finds nothing left to email: each notification is claimed once.
    assert notifications_send_pending(tenant_id=tenant_a.id) == 0


def test_emails_left_pending_are_picked_up_by_the_send_scan(tenant_a):
    make_staff(tenant_a, role=MspRole.ENGINEER, username="eng-a")
    with tenant_scope(tenant_a.id):
        incident_create(
            tenant=tenant_a,
            title="Down",
            category=IncidentCategory.OUTAGE,
            severity=Severity.SEV1,
        )
    publisher.outbox_publish_tenant(tenant_id=tenant_a.id)  # the worker "dies" before emailing
    later = timezone.now() + dt.timedelta(minutes=2)
    assert tenant_a.id in publisher.tenants_with_due_deliveries(now=later)
    send_tenant_due(tenant_id=tenant_a.id)
    with tenant_scope(tenant_a.id):
        assert set(Notification.objects.values_list("status", flat=True)) == {
            NotificationStatus.SENT
        }
