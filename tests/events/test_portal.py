"""The portal's webhook page: tenant admins add endpoints (secret shown once) and act on them;
others are refused; another tenant's endpoint is not found."""

from __future__ import annotations

import pytest

from operations.events.models import Delivery, WebhookEndpoint
from tenants.scoping import tenant_scope
from tests.factories import make_webhook_endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_allowed(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True


def test_a_tenant_admin_adds_an_endpoint_and_sees_the_secret_once(admin_a_signed_in, tenant_a):
    client = admin_a_signed_in.client
    url = f"/portal/{tenant_a.slug}/webhooks/"
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {"url": "http://127.0.0.1:9/hook", "kind": "webhook", "event_types": ["incident.opened"]},
        format="multipart",
    )
    assert response.status_code == 200
    assert b"whsec_" in response.content
    with tenant_scope(tenant_a.id):
        endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["incident.opened"]
    listing = client.get(url).content.decode()
    assert endpoint.secret not in listing
    assert endpoint.secret_hint in listing


def test_actions_on_an_endpoint(admin_a_signed_in, tenant_a):
    client = admin_a_signed_in.client
    endpoint = make_webhook_endpoint(tenant_a)
    base = f"/portal/{tenant_a.slug}/webhooks/{endpoint.pk}"
    assert client.post(f"{base}/test/").status_code == 302
    with tenant_scope(tenant_a.id):
        assert Delivery.objects.filter(topic="webhook.test").count() == 1
    rotated = client.post(f"{base}/rotate/")
    assert b"whsec_" in rotated.content
    assert client.post(f"{base}/disable/").status_code == 302
    with tenant_scope(tenant_a.id):
        assert not WebhookEndpoint.objects.get().is_active


def test_members_are_refused_and_foreign_endpoints_are_not_found(
    member_a, admin_a_signed_in, tenant_a, tenant_b
):
    member = member_a.client
    member.force_login(member_a.user)
    assert member.get(f"/portal/{tenant_a.slug}/webhooks/").status_code == 403
    foreign = make_webhook_endpoint(tenant_b)
    client = admin_a_signed_in.client
    response = client.post(f"/portal/{tenant_a.slug}/webhooks/{foreign.pk}/delete/")
    assert response.status_code == 404
    with tenant_scope(tenant_b.id):
        assert WebhookEndpoint.objects.filter(pk=foreign.pk).exists()
