"""Portal pages of the delivery context.

- Webhooks: endpoints, their delivery log, and the actions (add, rotate the secret, send a
  test event, redeliver failed ones, enable, disable, delete). Tenant admins only
  (``manage``). A new or rotated secret is rendered once, never redirected through a URL,
  session or message.
- Email notifications: anyone who reaches the tenant (staff too) chooses what they are
  emailed about in it, or stops its email; their own row only.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from operations.events import services
from operations.events.portal.forms import EmailSettingsForm, WebhookEndpointForm
from operations.events.selectors import (
    delivery_list,
    email_settings_for,
    notification_preference_get,
    webhook_endpoint_get,
    webhook_endpoint_list,
)
from tenants.portal.access import PortalTenant, portal_tenant_view, render_portal, tenant_not_found


def _secret_page(request, page: PortalTenant, endpoint, secret: str, *, rotated: bool):
    return render_portal(
        request,
        page,
        "events/webhook_secret.html",
        section="webhooks",
        endpoint=endpoint,
        secret=secret,
        rotated=rotated,
    )


@portal_tenant_view(write_capability="manage", edit_only=True)
def webhooks(request, page: PortalTenant):
    form = WebhookEndpointForm()
    if request.method == "POST":
        form = WebhookEndpointForm(request.POST)
        if form.is_valid():
            try:
                endpoint, secret = services.endpoint_create(
                    tenant=page.tenant, created_by=request.user, **form.cleaned_data
                )
            except ValidationError as error:
                form.add_service_error(error)
            else:
                return _secret_page(request, page, endpoint, secret, rotated=False)
    return render_portal(
        request,
        page,
        "events/webhooks.html",
        section="webhooks",
        endpoints=list(webhook_endpoint_list(tenant=page.tenant)),
        deliveries=delivery_list(tenant=page.tenant, limit=50),
        form=form,
    )


_ACTIONS = ("rotate", "test", "redeliver", "enable", "disable", "delete")


@portal_tenant_view(write_capability="manage", edit_only=True)
@require_POST
def webhook_action(request, page: PortalTenant, endpoint_id: int, action: str):
    endpoint = webhook_endpoint_get(tenant=page.tenant, endpoint_id=endpoint_id)
    if endpoint is None or action not in _ACTIONS:
        return tenant_not_found(request)
    tenant = page.tenant
    if action == "rotate":
        endpoint, secret = services.endpoint_rotate_secret(tenant=tenant, endpoint=endpoint)
        return _secret_page(request, page, endpoint, secret, rotated=True)
    if action == "test":
        if endpoint.is_active:
            services.endpoint_send_test(tenant=tenant, endpoint=endpoint, user=request.user)
            messages.success(request, f"A test event is on its way to {endpoint.url}.")
        else:
            messages.error(request, "Enable the endpoint before sending a test event.")
    elif action == "redeliver":
        count = services.endpoint_redeliver_failed(tenant=tenant, endpoint=endpoint)
        messages.success(request, f"{count} failed delivery(ies) queued again.")
    elif action in ("enable", "disable"):
        services.endpoint_update(tenant=tenant, endpoint=endpoint, is_active=action == "enable")
        messages.success(request, f"{endpoint.url}: {action}d.")
    else:
        services.endpoint_delete(tenant=tenant, endpoint=endpoint)
        messages.success(request, f"{endpoint.url}: deleted.")
    return redirect("portal_events:webhooks", slug=tenant.slug)


@portal_tenant_view(write_capability="own_settings")
def email_settings(request, page: PortalTenant):
    tenant, user = page.tenant, request.user
    if request.method == "POST":
        if request.POST.get("action") == "defaults":
            preference = notification_preference_get(tenant=tenant, user=user)
            if preference is not None:
                services.notification_preference_delete(tenant=tenant, preference=preference)
            messages.success(request, "Back to the defaults of your role.")
            return redirect("portal_events:notifications", slug=tenant.slug)
        form = EmailSettingsForm(request.POST)
        if form.is_valid():
            services.notification_preference_set(tenant=tenant, user=user, **form.cleaned_data)
            messages.success(request, "Your email notifications are saved.")
            return redirect("portal_events:notifications", slug=tenant.slug)
    else:
        current = email_settings_for(tenant=tenant, user=user)
        form = EmailSettingsForm(
            initial={"email": current.email, "event_types": sorted(current.event_types)}
        )
    return render_portal(
        request,
        page,
        "events/email_settings.html",
        section="notifications",
        form=form,
        current=email_settings_for(tenant=tenant, user=user),
    )
