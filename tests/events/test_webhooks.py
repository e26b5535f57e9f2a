"""Webhooks end to end against a real local receiver: signing, retries, rotation, SSRF and the
tenant boundary. Time is moved by passing ``now=``, never by sleeping."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import standardwebhooks
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from operations.events import delivery as publisher
from operations.events import services
from operations.events.models import (
    Delivery,
    DeliveryStatus,
    MspDelivery,
    OutboxEvent,
    WebhookEndpoint,
)
from operations.incidents.models import IncidentCategory
from operations.incidents.services import incident_acknowledge, incident_create
from tenants.models import Severity
from tenants.scoping import tenant_scope
from tests.events.receiver import WebhookReceiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def private_allowed(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    settings.WEBHOOKS_RETRY_BASE_SECONDS = 60
    settings.WEBHOOKS_RETRY_CAP_SECONDS = 6 * 3600
    settings.WEBHOOKS_RETRY_WINDOW_SECONDS = 24 * 3600


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.close()


def make_endpoint(tenant, url, **kwargs):
    with tenant_scope(tenant.id), transaction.atomic():
        return services.endpoint_create(tenant=tenant, url=url, **kwargs)


def open_incident(tenant, title="GPU node down"):
    with tenant_scope(tenant.id):
        return incident_create(
            tenant=tenant, title=title, category=IncidentCategory.OUTAGE, severity=Severity.SEV1
        )


def publish_and_send(tenant, now=None):
    publisher.outbox_publish_tenant(tenant_id=tenant.id)
    return publisher.deliveries_send_due(tenant_id=tenant.id, now=now)


def deliveries(tenant):
    with tenant_scope(tenant.id):
        return list(Delivery.objects.order_by("id"))


def test_a_delivery_is_signed_and_verifies_with_the_standardwebhooks_library(
    private_allowed, receiver, tenant_a
):
    endpoint, secret = make_endpoint(tenant_a, receiver.url)
    assert secret.startswith("whsec_")
    open_incident(tenant_a)

    counts = publish_and_send(tenant_a)

    assert counts["succeeded"] == 1
    [got] = receiver.received
    body = standardwebhooks.Webhook(secret).verify(got.body, got.headers)
    assert body["type"] == "incident.opened"
    assert body["tenant"] == "acme"
    assert body["data"]["severity"] == "SEV1"
    assert got.headers["webhook-id"].startswith("msg_")
    # A wrong secret does not verify: the signature is real.
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(services.secret_generate()).verify(got.body, got.headers)
    [row] = deliveries(tenant_a)
    assert (row.status, row.attempts, row.response_status) == (DeliveryStatus.SUCCEEDED, 1, 200)
    assert row.latency_ms is not None
    assert '"ok"' in row.response_excerpt
    with tenant_scope(tenant_a.id):
        assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()


def test_a_receiver_that_fails_then_recovers_gets_the_event_once_after_retries(
    private_allowed, receiver, tenant_a
):
    receiver.script = [500, 503, 502]
    endpoint, secret = make_endpoint(tenant_a, receiver.url)
    open_incident(tenant_a)
    now = timezone.now()

    publish_and_send(tenant_a, now=now)
    for _ in range(5):
        [row] = deliveries(tenant_a)
        if row.status != DeliveryStatus.PENDING:
            break
        # Not due yet: nothing is sent before the backoff has passed.
        assert publisher.deliveries_send_due(tenant_id=tenant_a.id, now=now)["sent"] == 0
        now = row.next_attempt_at + dt.timedelta(seconds=1)
        publisher.deliveries_send_due(tenant_id=tenant_a.id, now=now)

    [row] = deliveries(tenant_a)
    assert row.status == DeliveryStatus.SUCCEEDED
    assert row.attempts == 4
    assert receiver.answered == [500, 503, 502, 200]
    assert len(receiver.received) == 1
    # The retried message is the same message: same id, verifiable.
    standardwebhooks.Webhook(secret).verify(receiver.received[0].body, receiver.received[0].headers)


def test_backoff_grows_is_capped_and_jittered(settings):
    import random

    settings.WEBHOOKS_RETRY_BASE_SECONDS = 30
    settings.WEBHOOKS_RETRY_CAP_SECONDS = 3600
    rng = random.Random(7)
    delays = [publisher.retry_delay(attempt, rng=rng) for attempt in range(1, 12)]
    assert 24 <= delays[0] <= 36
    assert 48 <= delays[1] <= 72
    assert all(delay <= 3600 * 1.2 for delay in delays)
    assert delays[-1] >= 3600 * 0.8
    assert len({round(delay) for delay in delays[-3:]}) == 3  # jitter: no two alike


def test_a_receiver_down_for_a_day_fails_the_delivery_disables_the_endpoint_and_tells_its_owner(
    private_allowed, receiver, tenant_a, admin_a, django_capture_on_commit_callbacks
):
    receiver.status = 500
    endpoint, _secret = make_endpoint(
        tenant_a, receiver.url, created_by=admin_a.user, event_types=["incident.opened"]
    )
    open_incident(tenant_a)
    now = timezone.now()
    publish_and_send(tenant_a, now=now)
    for _ in range(40):
        [row] = deliveries(tenant_a)
        if row.status != DeliveryStatus.PENDING:
            break
        now = row.next_attempt_at + dt.timedelta(seconds=1)
        with django_capture_on_commit_callbacks(execute=True):
            publisher.deliveries_send_due(tenant_id=tenant_a.id, now=now)

    [row] = deliveries(tenant_a)
    assert row.status == DeliveryStatus.FAILED
    assert 5 < row.attempts < 40
    assert now - row.created_at <= dt.timedelta(hours=25)
    with tenant_scope(tenant_a.id):
        endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert "failed" in endpoint.disabled_reason
    assert [m.to for m in mail.outbox] == [[admin_a.user.email]]
    assert "disabled" in mail.outbox[0].subject

    # Fixed and re-enabled: redeliver the failed ones, and it arrives.
    receiver.status = 200
    with tenant_scope(tenant_a.id), transaction.atomic():
        services.endpoint_update(tenant=tenant_a, endpoint=endpoint, is_active=True)
        assert services.endpoint_redeliver_failed(tenant=tenant_a, endpoint=endpoint) == 1
    publisher.deliveries_send_due(tenant_id=tenant_a.id)
    assert len(receiver.received) == 1


def test_a_down_receiver_never_blocks_the_write(private_allowed, tenant_a):
    # Nothing listens on this port: the write commits, the event waits in the outbox.
    make_endpoint(tenant_a, "http://127.0.0.1:9/hook")
    incident = open_incident(tenant_a)
    with tenant_scope(tenant_a.id):
        assert OutboxEvent.objects.filter(topic="incident.opened").count() == 1
        assert not Delivery.objects.exists()  # nothing was even attempted in the write
    publish_and_send(tenant_a)
    [row] = deliveries(tenant_a)
    assert row.status == DeliveryStatus.PENDING
    assert row.error
    assert incident.pk


def test_a_rotated_secret_verifies_with_either_secret_during_the_overlap(
    private_allowed, receiver, tenant_a
):
    endpoint, old_secret = make_endpoint(tenant_a, receiver.url)
    with tenant_scope(tenant_a.id), transaction.atomic():
        endpoint, new_secret = services.endpoint_rotate_secret(
            tenant=tenant_a, endpoint=endpoint, overlap_seconds=3600
        )
    assert new_secret != old_secret
    open_incident(tenant_a)
    publish_and_send(tenant_a)

    [got] = receiver.received
    standardwebhooks.Webhook(old_secret).verify(got.body, got.headers)
    standardwebhooks.Webhook(new_secret).verify(got.body, got.headers)
    assert len(got.headers["webhook-signature"].split(" ")) == 2

    # After the overlap only the new secret signs.
    later = timezone.now() + dt.timedelta(hours=2)
    assert services.endpoint_signing_secrets(endpoint, now=later) == [new_secret]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hook",
        "http://192.168.1.10/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "ftp://example.com/hook",
    ],
)
def test_an_ssrf_address_is_refused(url, tenant_a):
    with pytest.raises(ValidationError) as refused:
        services.endpoint_url_check(url)
    assert "url" in refused.value.message_dict


def test_an_endpoint_that_became_private_is_refused_at_send_time(
    settings, private_allowed, receiver, tenant_a
):
    make_endpoint(tenant_a, receiver.url)
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    open_incident(tenant_a)
    publish_and_send(tenant_a)
    assert receiver.received == []
    [row] = deliveries(tenant_a)
    assert row.status == DeliveryStatus.PENDING
    assert "private" in row.error


def test_a_name_resolving_to_loopback_is_refused_at_delivery_time(
    settings, private_allowed, tenant_a
):
    receiver = WebhookReceiver()
    try:
        make_endpoint(tenant_a, f"http://localhost:{receiver.port_bound}/hook")
        settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
        open_incident(tenant_a)
        counts = publish_and_send(tenant_a)
    finally:
        receiver.close()
    assert counts["failed"] == 1
    assert receiver.arrived == []  # never connected to
    [row] = deliveries(tenant_a)
    assert "private" in row.error


def test_delivery_connects_to_the_address_it_checked_whatever_dns_answers_next(
    settings, private_allowed, tenant_a, monkeypatch
):
    """DNS rebinding: the name resolves to a public address for the check, then to an internal
    one. Here 127.0.0.1 plays the public receiver and 127.0.0.2 the internal service."""
    import socket

    receiver = WebhookReceiver()
    internal = WebhookReceiver(host="127.0.0.2", port=receiver.port_bound)
    try:
        make_endpoint(tenant_a, f"http://rebind.test:{receiver.port_bound}/hook")
        settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
        monkeypatch.setattr(services, "_address_refused", lambda address: address != "127.0.0.1")
        answers = iter(["127.0.0.1"])
        real_getaddrinfo = socket.getaddrinfo

        def rebinding_dns(host, port, *args, **kwargs):
            if host != "rebind.test":
                return real_getaddrinfo(host, port, *args, **kwargs)
            address = next(answers, "127.0.0.2")  # the first answer, then the rebound one
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

        monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
        open_incident(tenant_a)
        counts = publish_and_send(tenant_a)
    finally:
        receiver.close()
        internal.close()
    assert counts["succeeded"] == 1
    assert internal.arrived == []
    [got] = receiver.received
    assert got.headers["host"] == f"rebind.test:{receiver.port_bound}"


def test_each_tenants_webhook_gets_only_its_own_tenants_event(private_allowed, tenant_a, tenant_b):
    receiver_a, receiver_b = WebhookReceiver(), WebhookReceiver()
    try:
        _endpoint_a, secret_a = make_endpoint(tenant_a, receiver_a.url)
        _endpoint_b, secret_b = make_endpoint(tenant_b, receiver_b.url)
        open_incident(tenant_a, "Acme's outage")
        open_incident(tenant_b, "Borealis's outage")
        publish_and_send(tenant_a)
        publish_and_send(tenant_b)
    finally:
        receiver_a.close()
        receiver_b.close()

    [got_a] = receiver_a.received
    [got_b] = receiver_b.received
    body_a = standardwebhooks.Webhook(secret_a).verify(got_a.body, got_a.headers)
    body_b = standardwebhooks.Webhook(secret_b).verify(got_b.body, got_b.headers)
    assert (body_a["tenant"], body_a["data"]["title"]) == ("acme", "Acme's outage")
    assert (body_b["tenant"], body_b["data"]["title"]) == ("borealis", "Borealis's outage")


def test_an_event_filter_delivers_only_the_types_asked_for(private_allowed, receiver, tenant_a):
    make_endpoint(tenant_a, receiver.url, event_types=["incident.acknowledged"])
    incident = open_incident(tenant_a)
    with tenant_scope(tenant_a.id):
        incident_acknowledge(tenant=tenant_a, incident=incident)
    publish_and_send(tenant_a)
    assert [json.loads(r.body)["type"] for r in receiver.received] == ["incident.acknowledged"]


def test_an_msp_wide_endpoint_hears_every_tenant_it_subscribes_to(
    private_allowed, receiver, tenant_a, tenant_b
):
    with transaction.atomic():
        _endpoint, secret = services.endpoint_create(
            tenant=None, url=receiver.url, tenant_slugs=["acme", "borealis"]
        )
    open_incident(tenant_a)
    open_incident(tenant_b)
    publisher.outbox_publish_tenant(tenant_id=tenant_a.id)
    publisher.outbox_publish_tenant(tenant_id=tenant_b.id)
    counts = publisher.msp_deliveries_send_due()
    assert counts["succeeded"] == 2
    tenants = sorted(
        standardwebhooks.Webhook(secret).verify(r.body, r.headers)["tenant"]
        for r in receiver.received
    )
    assert tenants == ["acme", "borealis"]
    assert MspDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 2


def test_publishing_twice_delivers_once(private_allowed, receiver, tenant_a):
    make_endpoint(tenant_a, receiver.url)
    open_incident(tenant_a)
    publisher.outbox_publish_tenant(tenant_id=tenant_a.id)
    assert publisher.outbox_publish_tenant(tenant_id=tenant_a.id) == 0
    publisher.deliveries_send_due(tenant_id=tenant_a.id)
    publisher.deliveries_send_due(tenant_id=tenant_a.id)
    assert len(receiver.received) == 1


def test_published_rows_are_pruned_after_the_retention(private_allowed, settings, tenant_a):
    settings.EVENTS_OUTBOX_RETENTION_DAYS = 7
    open_incident(tenant_a)
    publisher.outbox_publish_tenant(tenant_id=tenant_a.id)
    open_incident(tenant_a, "still pending")
    assert publisher.outbox_prune()["outbox"] == 0
    pruned = publisher.outbox_prune(now=timezone.now() + dt.timedelta(days=8))
    assert pruned["outbox"] == 1
    with tenant_scope(tenant_a.id):
        assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 1


def test_send_test_event_reaches_that_endpoint_alone(private_allowed, tenant_a):
    first, second = WebhookReceiver(), WebhookReceiver()
    try:
        endpoint, secret = make_endpoint(tenant_a, first.url)
        make_endpoint(tenant_a, second.url)
        with tenant_scope(tenant_a.id), transaction.atomic():
            services.endpoint_send_test(tenant=tenant_a, endpoint=endpoint)
        publisher.deliveries_send_due(tenant_id=tenant_a.id)
    finally:
        first.close()
        second.close()
    [got] = first.received
    assert standardwebhooks.Webhook(secret).verify(got.body, got.headers)["type"] == "webhook.test"
    assert second.received == []


def test_events_of_other_contexts_are_catalogued_and_recorded(tenant_a, admin_a):
    from tenants.services import tenant_transition

    with tenant_scope(tenant_a.id):
        topics = set(OutboxEvent.objects.values_list("topic", flat=True))
    assert "token.created" in topics  # the admin's token, issued by the fixture
    tenant_transition(tenant=tenant_a, to_status="onboarding")
    with tenant_scope(tenant_a.id):
        event = OutboxEvent.objects.get(topic="tenant.status_changed")
    assert event.payload == {"slug": "acme", "name": tenant_a.name, "status": "onboarding"}
    with tenant_scope(tenant_a.id):
        token_event = OutboxEvent.objects.filter(topic="token.created").first()
    assert set(token_event.payload) == {
        "id",
        "name",
        "prefix",
        "scopes",
        "expires_at",
        "created_by",
    }
    assert admin_a.token not in json.dumps(token_event.payload)


def test_an_unknown_topic_is_refused(tenant_a):
    from operations.events.catalogue import UnknownEventType

    with tenant_scope(tenant_a.id), transaction.atomic(), pytest.raises(UnknownEventType):
        services.event_record(tenant=tenant_a, topic="incident.exploded", payload={})


def test_secrets_never_reach_the_audit_log(private_allowed, tenant_a):
    from tenants.models import AuditEvent

    endpoint, secret = make_endpoint(tenant_a, "http://127.0.0.1:9/")
    logged = json.dumps(list(AuditEvent.objects.values("changes")))
    assert secret not in logged
    assert isinstance(endpoint, WebhookEndpoint)
