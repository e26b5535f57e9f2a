"""Demo webhooks: an active tenant gets a (disabled) demo endpoint and a delivery log, once."""

from __future__ import annotations

import pytest

from operations.events.demo import seed_events
from operations.events.models import Delivery, DeliveryStatus, EscalationPolicy, WebhookEndpoint
from tenants.scoping import tenant_scope
from tests.jobs.conftest import activate

pytestmark = pytest.mark.django_db


def test_the_demo_is_idempotent_and_only_for_active_tenants(tenant_a, tenant_b):
    assert seed_events(tenant_b) == 0  # a prospect gets nothing
    tenant_a = activate(tenant_a)
    assert seed_events(tenant_a) > 0
    assert seed_events(tenant_a) == 0
    with tenant_scope(tenant_a.id):
        endpoint = WebhookEndpoint.objects.get()
        statuses = set(Delivery.objects.values_list("status", flat=True))
    assert not endpoint.is_active
    assert statuses == {DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED}
    with tenant_scope(tenant_a.id):
        [policy] = EscalationPolicy.objects.all()
        topics = set(Delivery.objects.values_list("topic", flat=True))
    assert (policy.hours, policy.severities) == ("plan", ["SEV1", "SEV2"])
    assert {"job.failed", "readiness.level_changed"} <= topics
