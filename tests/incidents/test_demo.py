"""Demo incidents: every kind the product shows, made through the services, idempotently."""

from __future__ import annotations

import pytest

from operations.incidents.demo import seed_incidents
from operations.incidents.models import Incident, Postmortem, TimelineEntry
from operations.inventory.models import AISystem
from tenants.models import MspRole, TenantRole
from tenants.owned import owned_object_create
from tenants.scoping import tenant_scope
from tests.factories import make_member, make_staff

pytestmark = pytest.mark.django_db


def test_seed_incidents_fills_every_state_once(tenant_a, tenant_b):
    make_member(tenant_a, TenantRole.MEMBER, username="demo-client")
    engineer = make_staff(tenant_a, role=MspRole.ENGINEER, username="demo-engineer")
    with tenant_scope(tenant_a.id):
        owned_object_create(tenant=tenant_a, model=AISystem, data={"name": "Fraud scoring"})
    created = seed_incidents(tenant_a)
    assert len(created) == 5
    assert seed_incidents(tenant_a) == []  # idempotent
    with tenant_scope(tenant_a.id):
        incidents = {i.dedupe_key: i for i in Incident.objects.all()}
        assert len(incidents) == 5
        breached = incidents["demo:breached-outage"]
        assert breached.ack_breached_at is not None
        assert breached.resolve_breached_at is not None
        assert breached.source == "portal"
        assert breached.sla_paused.total_seconds() > 0
        assert incidents["demo:open-latency"].assignee == engineer
        assert incidents["demo:open-latency"].status == "investigating"
        assert incidents["demo:resolved-xid"].status == "resolved"
        serious = incidents["demo:serious-drift"]
        assert serious.serious
        assert serious.regulator_overdue
        assert incidents["demo:new-language"].status == "triggered"
        postmortem = Postmortem.objects.get()
        assert postmortem.incident == incidents["demo:resolved-xid"]
        assert postmortem.action_items.count() == 2
        assert TimelineEntry.objects.filter(internal=True).exists()
        assert TimelineEntry.objects.filter(internal=False).count() > 10
    with tenant_scope(tenant_b.id):
        assert not Incident.objects.exists()


def test_seed_incidents_works_without_people_or_estate(tenant_b):
    assert len(seed_incidents(tenant_b)) == 5
