"""Escalation and delivery under a SIGKILLed worker (real Celery workers sharing the test
database, as in tests/jobs/test_failures.py): the step fires once, the delivery arrives once
answered, after a restart. No timed assertions: every wait is a bounded poll."""

from __future__ import annotations

import datetime as dt

import pytest
import standardwebhooks
from django.db import connection, transaction
from django.utils import timezone

from operations.events import services
from operations.events.models import (
    Delivery,
    DeliveryStatus,
    EscalationPolicy,
    IncidentSignal,
    Notification,
    OnCallRotation,
    OutboxEvent,
)
from operations.events.tasks import escalations_tenant, publish_tenant, send_tenant_due
from operations.incidents.models import IncidentCategory
from operations.incidents.services import incident_create
from tenants.models import MspRole, Severity
from tenants.scoping import tenant_scope
from tests.conftest import requires_postgres
from tests.events.receiver import WebhookReceiver
from tests.factories import TenantFactory, make_staff
from tests.jobs.worker import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def night(pool, monkeypatch, settings):
    """A tenant whose SEV1 pages the on-call engineer at once, then the boss ten hours later;
    worker subprocesses that may post to 127.0.0.1 and give up a dead sender's claim in 2 s."""
    monkeypatch.setenv("GROUNDWORK_TEST_WEBHOOKS", "1")
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    tenant = TenantFactory(name="Nightshift Ltd", slug="nightshift")
    owl = make_staff(tenant, role=MspRole.ENGINEER, username="night-owl")
    boss = make_staff(tenant, role=MspRole.ADMIN, username="night-boss")
    rotation = OnCallRotation.objects.create(
        name="Nights",
        shift="daily",
        starts_at=timezone.now() - dt.timedelta(days=1),
        members=[owl.pk],
    )
    with tenant_scope(tenant.id), transaction.atomic():
        policy = EscalationPolicy.objects.create(
            tenant=tenant,
            severities=["SEV1"],
            steps=[
                {"after_minutes": 0, "notify": [f"oncall:{rotation.pk}"]},
                {"after_minutes": 600, "notify": [f"user:{boss.pk}"]},
            ],
        )
        incident = incident_create(
            tenant=tenant,
            title="Inference cluster down",
            category=IncidentCategory.OUTAGE,
            severity=Severity.SEV1,
        )
    return tenant, policy, incident, owl


def in_tenant(tenant, read):
    with tenant_scope(tenant.id):
        return read()


def signals(tenant) -> list[str]:
    return in_tenant(tenant, lambda: list(IncidentSignal.objects.values_list("key", flat=True)))


def escalated_events(tenant) -> list[OutboxEvent]:
    return in_tenant(tenant, lambda: list(OutboxEvent.objects.filter(topic="incident.escalated")))


def test_a_worker_killed_mid_delivery_neither_repeats_the_step_nor_loses_the_message(night, pool):
    tenant, policy, _incident, owl = night
    receiver = WebhookReceiver(hold=1)
    try:
        endpoint, secret = _endpoint(tenant, receiver.url)
        with pool.broker():
            first = pool.start()
            escalations_tenant.apply_async(kwargs={"tenant_id": tenant.id})
            wait_until(
                lambda: signals(tenant) == [f"escalation:{policy.pk}:0:0"],
                what="the first worker to fire step 1",
                pool=pool,
            )
            publish_tenant.apply_async(kwargs={"tenant_id": tenant.id})
            wait_until(
                lambda: len(receiver.arrived) == 1,
                what="the first worker to post the escalation and wait for an answer",
                pool=pool,
            )
            first.kill()  # mid-request: no answer read, no outcome stored
            receiver.release()
            [delivery] = in_tenant(tenant, lambda: list(Delivery.objects.all()))
            assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)

            pool.start()

            def beat():
                # What beat sends every few seconds: the escalation scan and the due sends.
                escalations_tenant.apply_async(kwargs={"tenant_id": tenant.id})
                send_tenant_due.apply_async(kwargs={"tenant_id": tenant.id})

            wait_until(
                lambda: (
                    in_tenant(tenant, lambda: Delivery.objects.get().status)
                    == DeliveryStatus.SUCCEEDED
                ),
                what="the second worker to send the delivery again after the claim lapsed",
                between=beat,
                every=1.0,
                pool=pool,
            )
    finally:
        receiver.close()
    assert signals(tenant) == [f"escalation:{policy.pk}:0:0"]  # once, never twice
    [event] = escalated_events(tenant)
    assert event.payload["step"] == 1
    assert event.payload["notified"] == [owl.email]
    delivery = in_tenant(tenant, lambda: Delivery.objects.get())
    assert (delivery.attempts, delivery.response_status) == (2, 200)
    # The receiver saw the one message twice: the first post was never answered.
    assert [r.headers["webhook-id"] for r in receiver.arrived] == [delivery.message_id] * 2
    [answered] = receiver.received
    body = standardwebhooks.Webhook(secret).verify(answered.body, answered.headers)
    assert body["type"] == "incident.escalated"
    paged = in_tenant(
        tenant,
        lambda: list(
            Notification.objects.filter(topic="incident.escalated").values_list(
                "recipient", flat=True
            )
        ),
    )
    # The step's page and the preference-based email to assigned staff: each person once.
    assert sorted(paged) == sorted(set(paged))
    assert owl.email in paged


def _endpoint(tenant, url):
    with tenant_scope(tenant.id), transaction.atomic():
        return services.endpoint_create(tenant=tenant, url=url, event_types=["incident.escalated"])


def worker_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        # Inside a transaction the statistics views are a snapshot: take a fresh one.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


@requires_postgres
def test_a_worker_killed_inside_the_escalation_transaction_fires_the_step_once_after_restart(
    night, pool
):
    """The worker is held inside its step's transaction (its insert of the step's unique key
    waits on this test's uncommitted row) and killed there; nothing of it commits."""
    tenant, policy, incident, owl = night
    key = f"escalation:{policy.pk}:0:0"
    with pool.broker():
        first = pool.start()
        with tenant_scope(tenant.id), transaction.atomic():
            IncidentSignal.objects.create(
                tenant=tenant, incident_id=incident.pk, key=key, fired_at=timezone.now()
            )
            escalations_tenant.apply_async(kwargs={"tenant_id": tenant.id})
            wait_until(
                worker_waits_on_a_lock,
                what="the worker to wait inside its step's transaction",
                pool=pool,
            )
            first.kill()
            transaction.set_rollback(True)
        assert signals(tenant) == []
        assert escalated_events(tenant) == []

        pool.start()
        wait_until(
            lambda: signals(tenant) == [key],
            what="the second worker to fire the step",
            between=lambda: escalations_tenant.apply_async(kwargs={"tenant_id": tenant.id}),
            every=1.0,
            pool=pool,
        )
        # More scans, as beat would send: the step stays fired once.
        for _ in range(3):
            escalations_tenant.apply_async(kwargs={"tenant_id": tenant.id})
        wait_until(
            lambda: in_tenant(
                tenant,
                lambda: (
                    Notification.objects.filter(topic="incident.escalated", status="sent")
                    .exclude(recipient="")
                    .exists()
                ),
            ),
            what="the page to be emailed",
            pool=pool,
        )
    assert signals(tenant) == [key]
    [event] = escalated_events(tenant)
    assert event.payload["notified"] == [owl.email]
