"""The webhook API: the tenant routes under the isolation harness, the catalogue, secrets shown
once, and who may manage what."""

from __future__ import annotations

import pytest
from django.db import transaction

from operations.events import services
from operations.events.models import (
    Delivery,
    Notification,
    NotificationPreference,
    WebhookEndpoint,
)
from tenants.scoping import tenant_scope
from tests.conftest import Actor
from tests.factories import make_token, make_webhook_delivery, make_webhook_endpoint
from tests.isolation import TenantIsolationTests

pytestmark = pytest.mark.django_db

LOCAL_URL = "http://127.0.0.1:9/hook"


@pytest.fixture(autouse=True)
def private_allowed(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True


def make_endpoint(tenant, url=LOCAL_URL):
    with tenant_scope(tenant.id), transaction.atomic():
        endpoint, _secret = services.endpoint_create(tenant=tenant, url=url)
    return endpoint


class TestWebhookEndpointIsolation(TenantIsolationTests):
    resource = "webhooks"
    model = WebhookEndpoint
    detail_actions = ("rotate-secret", "send-test", "redeliver-failed")
    update_payload = {"description": "renamed"}

    def make_object(self, tenant):
        return make_webhook_endpoint(tenant)

    def create_payload(self, tenant):
        return {"url": LOCAL_URL, "event_types": ["incident.opened"]}


class TestDeliveryIsolation(TenantIsolationTests):
    resource = "webhook-deliveries"
    model = Delivery
    can_update = can_delete = can_create = False
    detail_actions = ("redeliver",)

    def make_object(self, tenant):
        return make_webhook_delivery(tenant)


def test_the_catalogue_lists_every_type_with_a_schema_and_is_in_the_openapi_document(msp_admin):
    response = msp_admin.client.get("/api/v1/events/catalogue/")
    assert response.status_code == 200
    names = {row["name"] for row in response.json()["results"]}
    for required in (
        "incident.opened",
        "incident.acknowledged",
        "incident.escalated",
        "incident.resolved",
        "incident.sla_at_risk",
        "incident.sla_breached",
        "incident.regulator_deadline_near",
        "finding.opened",
        "finding.resolved",
        "recommendation.opened",
        "readiness.level_changed",
        "job.failed",
        "report.ready",
        "tenant.status_changed",
        "token.created",
    ):
        assert required in names
    assert all(row["schema"]["type"] == "object" for row in response.json()["results"])
    schema = msp_admin.client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]
    assert "WebhookEnvelope" in components
    assert components["Event_incident_opened_v1"]["properties"]["severity"]["enum"][0] == "SEV1"


def test_the_secret_is_shown_once_on_create_and_on_rotation(admin_a_signed_in, tenant_a):
    client = admin_a_signed_in.client
    created = client.post(
        f"/api/v1/tenants/{tenant_a.slug}/webhooks/", {"url": LOCAL_URL}, format="json"
    )
    assert created.status_code == 201, created.content
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    endpoint_id = created.json()["id"]
    shown = client.get(f"/api/v1/tenants/{tenant_a.slug}/webhooks/{endpoint_id}/").json()
    assert "secret" not in shown
    assert shown["secret_hint"] == secret[:10] + "…"
    rotated = client.post(
        f"/api/v1/tenants/{tenant_a.slug}/webhooks/{endpoint_id}/rotate-secret/",
        {"overlap_seconds": 600},
        format="json",
    )
    assert rotated.status_code == 200
    assert rotated.json()["secret"] not in (secret, None)
    assert rotated.json()["previous_secret_expires_at"]


def test_an_ssrf_url_is_refused_through_the_api(settings, admin_a, tenant_a):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    response = admin_a.client.post(
        f"/api/v1/tenants/{tenant_a.slug}/webhooks/",
        {"url": "http://169.254.169.254/latest/"},
        format="json",
    )
    assert response.status_code == 400
    assert "url" in response.json()["error"]["fields"]


def test_members_and_viewers_cannot_manage_webhooks(member_a, viewer_a, tenant_a):
    make_endpoint(tenant_a)
    for actor in (member_a, viewer_a):
        assert actor.client.get(f"/api/v1/tenants/{tenant_a.slug}/webhooks/").status_code == 403
        response = actor.client.post(
            f"/api/v1/tenants/{tenant_a.slug}/webhooks/", {"url": LOCAL_URL}, format="json"
        )
        assert response.status_code == 403


def test_msp_wide_webhooks_are_for_msp_admins_and_refused_to_a_bound_token(
    msp_admin, engineer_a, tenant_a
):
    created = msp_admin.client.post(
        "/api/v1/webhooks/", {"url": LOCAL_URL, "tenant_slugs": ["acme"]}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["secret"].startswith("whsec_")
    assert engineer_a.client.get("/api/v1/webhooks/").status_code == 403
    bound = Actor(msp_admin.user, make_token(msp_admin.user, tenant=tenant_a))
    refused = bound.client.get("/api/v1/webhooks/")
    assert refused.status_code == 403
    assert "bound to one tenant" in refused.json()["error"]["message"]


def _admin_of(tenant):
    from tenants.models import Membership, TenantRole
    from tests.factories import make_member

    membership = Membership.objects.filter(tenant=tenant, role=TenantRole.ADMIN).first()
    return membership.user if membership else make_member(tenant, TenantRole.ADMIN)


class TestNotificationPreferenceIsolation(TenantIsolationTests):
    resource = "notification-preferences"
    model = NotificationPreference
    update_payload = {"email": False}

    def make_object(self, tenant):
        # The caller's own row in tenant A (the list shows a person their own settings only).
        with tenant_scope(tenant.id), transaction.atomic():
            return services.notification_preference_set(
                tenant=tenant, user=_admin_of(tenant), event_types=["incident.opened"]
            )

    def create_payload(self, tenant):
        return {"event_types": ["incident.opened", "incident.sla_breached"], "email": True}


class TestNotificationIsolation(TenantIsolationTests):
    resource = "notifications"
    model = Notification
    can_update = can_delete = can_create = False

    def make_object(self, tenant):
        with tenant_scope(tenant.id):
            return Notification.objects.create(
                tenant=tenant,
                topic="incident.opened",
                channel="email",
                recipient=f"someone@{tenant.slug}.example",
                subject="x",
            )


def test_a_person_sees_and_sets_only_their_own_preferences(admin_a, member_a, tenant_a):
    url = f"/api/v1/tenants/{tenant_a.slug}/notification-preferences/"
    created = member_a.client.post(url, {"event_types": ["incident.resolved"]}, format="json")
    assert created.status_code == 201, created.content
    assert admin_a.client.get(url).json()["results"] == []
    assert [row["event_types"] for row in member_a.client.get(url).json()["results"]] == [
        ["incident.resolved"]
    ]
