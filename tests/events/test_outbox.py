"""The integration-events outbox: written in the transaction of the change, tenant-owned."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from operations.events.models import OutboxEvent
from operations.events.selectors import outbox_pending
from operations.events.services import OutboxOutsideTransaction, event_record
from tenants.scoping import TenantScopeMissing, tenant_scope

pytestmark = pytest.mark.django_db


def test_an_event_is_recorded_with_a_json_normalised_payload(tenant_a):
    when = dt.datetime(2026, 1, 14, 10, 0, tzinfo=dt.UTC)
    with tenant_scope(tenant_a.id), transaction.atomic():
        event = event_record(tenant=tenant_a, topic="incident.opened", payload={"at": when, "n": 1})
    assert event.payload == {"at": "2026-01-14T10:00:00Z", "n": 1}
    assert event.published_at is None
    with tenant_scope(tenant_a.id):
        assert list(outbox_pending(tenant=tenant_a)) == [event]


@pytest.mark.django_db(transaction=True)
def test_recording_outside_a_transaction_is_refused(tenant_a):
    with pytest.raises(OutboxOutsideTransaction):
        event_record(tenant=tenant_a, topic="incident.opened", payload={})


def test_events_belong_to_their_tenant(tenant_a, tenant_b):
    with tenant_scope(tenant_a.id, tenant_b.id), transaction.atomic():
        event_record(tenant=tenant_a, topic="incident.opened", payload={})
        event_record(tenant=tenant_b, topic="incident.resolved", payload={})
    with tenant_scope(tenant_a.id):
        assert list(OutboxEvent.objects.values_list("topic", flat=True)) == ["incident.opened"]
    with pytest.raises(TenantScopeMissing):
        list(OutboxEvent.objects.all())


def test_published_events_are_no_longer_pending(tenant_a):
    with tenant_scope(tenant_a.id), transaction.atomic():
        first = event_record(tenant=tenant_a, topic="incident.opened", payload={})
        second = event_record(tenant=tenant_a, topic="incident.resolved", payload={})
        OutboxEvent.objects.filter(pk=first.pk).update(
            published_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        )
        assert list(outbox_pending(tenant=tenant_a)) == [second]
