"""The portal's webhook page: tenant admins add endpoints (secret shown once) and act on them;
others are refused; another tenant's endpoint is not found."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client

from operations.events import services
from operations.events.models import Delivery, NotificationPreference, WebhookEndpoint
from operations.events.notify import email_audience
from tenants.scoping import tenant_scope
from tests.factories import login_verified, make_webhook_endpoint

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


# --- Email notifications: one's own settings ------------------------------------------------


def signed_in(actor):
    """A browser-like client (form posts), signed in; staff with their second factor."""
    client = Client()
    if actor.user.msp_role:
        login_verified(client, actor.user)
    else:
        client.force_login(actor.user)
    return client


def own_preference(tenant, user):
    with tenant_scope(tenant.id):
        return NotificationPreference.objects.filter(user=user).first()


def test_every_events_portal_route_passes_the_tenant_gate():
    from operations.events.portal.urls import urlpatterns

    for pattern in urlpatterns:
        assert getattr(pattern.callback, "portal_tenant_view", False), pattern.name


def test_a_tenant_admin_sees_the_defaults_of_the_role_then_chooses(admin_a, tenant_a):
    client = signed_in(admin_a)
    url = f"/portal/{tenant_a.slug}/notifications/"
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "the default of your role" in html
    ticked = {
        name
        for name in ("incident.opened", "incident.resolved", "incident.sla_breached")
        if f'value="{name}" id' in html and "checked" in html.split(f'value="{name}"')[1][:60]
    }
    assert ticked == {"incident.opened", "incident.resolved", "incident.sla_breached"}

    response = client.post(url, {"email": "on", "event_types": ["job.failed", "finding.opened"]})
    assert response.status_code == 302
    preference = own_preference(tenant_a, admin_a.user)
    assert (preference.email, sorted(preference.event_types)) == (
        True,
        ["finding.opened", "job.failed"],
    )
    assert "(your choice)" in client.get(url).content.decode()
    # Who is emailed follows the choice: the admin now hears of job.failed, not incident.opened.
    with tenant_scope(tenant_a.id):
        wanted = {uid: w for uid, _e, w, _s in email_audience(tenant=tenant_a)}
    assert wanted[admin_a.user.pk] == {"finding.opened", "job.failed"}

    client.post(url, {"action": "defaults"})
    assert own_preference(tenant_a, admin_a.user) is None


def test_a_viewer_may_turn_email_off_and_touches_only_their_own_row(viewer_a, admin_a, tenant_a):
    with tenant_scope(tenant_a.id), transaction.atomic():
        services.notification_preference_set(
            tenant=tenant_a, user=admin_a.user, event_types=["incident.opened"]
        )
    client = signed_in(viewer_a)
    response = client.post(f"/portal/{tenant_a.slug}/notifications/", {"event_types": []})
    assert response.status_code == 302
    mine = own_preference(tenant_a, viewer_a.user)
    assert (mine.email, mine.event_types) == (False, [])
    assert own_preference(tenant_a, admin_a.user).event_types == ["incident.opened"]


def test_staff_choose_their_tenants_and_another_tenant_is_not_found(analyst_a, tenant_a, tenant_b):
    client = signed_in(analyst_a)
    # Read-only staff still own their email settings.
    response = client.post(
        f"/portal/{tenant_a.slug}/notifications/", {"email": "on", "event_types": ["job.failed"]}
    )
    assert response.status_code == 302
    assert own_preference(tenant_a, analyst_a.user).event_types == ["job.failed"]
    # Tenant B is not one of the analyst's: the same 404 as a tenant that does not exist.
    assert client.get(f"/portal/{tenant_b.slug}/notifications/").status_code == 404
    assert client.get("/portal/no-such-tenant/notifications/").status_code == 404
    refused = client.post(f"/portal/{tenant_b.slug}/notifications/", {"email": "on"})
    assert refused.status_code == 404
    assert own_preference(tenant_b, analyst_a.user) is None


def test_an_unknown_event_type_is_a_form_error_not_a_500(admin_a, tenant_a):
    client = signed_in(admin_a)
    response = client.post(
        f"/portal/{tenant_a.slug}/notifications/", {"email": "on", "event_types": ["nope.x"]}
    )
    assert response.status_code == 200
    assert "nope.x" in response.content.decode()
    assert own_preference(tenant_a, admin_a.user) is None
