"""The outbox, webhook endpoints and delivery logs in the MSP console, read-only."""

from __future__ import annotations

from django.contrib import admin

from operations.events.escalation import on_call_now
from operations.events.models import (
    Delivery,
    EscalationPolicy,
    IncidentSignal,
    MspDelivery,
    MspWebhookEndpoint,
    OnCallOverride,
    OnCallRotation,
    OutboxEvent,
    WebhookEndpoint,
)
from operations.events.services import delivery_redeliver
from tenants.admin.base import (
    BoundedInlineFormSet,
    MspAdminOnlyMixin,
    StaffScopedAdmin,
    VisibleTenantListFilter,
)
from tenants.models import User


@admin.register(OutboxEvent)
class OutboxEventAdmin(StaffScopedAdmin, admin.ModelAdmin):
    list_display = ("created_at", "tenant", "topic", "published_at")
    list_filter = (("tenant", VisibleTenantListFilter), "topic", "published_at")
    search_fields = ("topic",)
    list_select_related = ("tenant",)
    readonly_fields = ("tenant", "topic", "payload", "created_at", "published_at")
    date_hierarchy = "created_at"

    # Events are written by services in the transaction of their change, never by hand.
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class _ReadOnly:
    # Endpoints are made through the API and the portal (their secret is shown once there);
    # deliveries are written by the worker. The console shows them and redelivers.
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


_ENDPOINT_FIELDS = (
    "url",
    "kind",
    "description",
    "event_types",
    "is_active",
    "disabled_at",
    "disabled_reason",
    "secret_hint",
    "previous_secret_expires_at",
    "created_by",
    "created_at",
)
_DELIVERY_FIELDS = (
    "endpoint",
    "topic",
    "message_id",
    "status",
    "attempts",
    "next_attempt_at",
    "last_attempt_at",
    "succeeded_at",
    "response_status",
    "latency_ms",
    "response_excerpt",
    "error",
    "body",
    "created_at",
)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(_ReadOnly, StaffScopedAdmin, admin.ModelAdmin):
    list_display = ("url", "tenant", "kind", "is_active", "disabled_at", "created_at")
    list_filter = (("tenant", VisibleTenantListFilter), "kind", "is_active")
    search_fields = ("url", "description")
    list_select_related = ("tenant",)
    fields = ("tenant", *_ENDPOINT_FIELDS)
    readonly_fields = fields


@admin.register(Delivery)
class DeliveryAdmin(_ReadOnly, StaffScopedAdmin, admin.ModelAdmin):
    list_display = ("created_at", "tenant", "topic", "endpoint", "status", "attempts", "latency_ms")
    list_filter = (("tenant", VisibleTenantListFilter), "status", "topic")
    search_fields = ("topic", "message_id", "endpoint__url")
    list_select_related = ("tenant", "endpoint")
    fields = ("tenant", *_DELIVERY_FIELDS)
    readonly_fields = fields
    date_hierarchy = "created_at"
    actions = ["redeliver"]

    @admin.action(description="Redeliver the selected deliveries")
    def redeliver(self, request, queryset):
        self.run_on_each(
            request,
            queryset,
            verb="Queued again",
            run=lambda delivery: delivery_redeliver(tenant=delivery.tenant, delivery=delivery),
        )


@admin.register(MspWebhookEndpoint)
class MspWebhookEndpointAdmin(_ReadOnly, MspAdminOnlyMixin, admin.ModelAdmin):
    list_display = ("url", "kind", "is_active", "disabled_at", "created_at")
    list_filter = ("kind", "is_active")
    search_fields = ("url", "description")
    fields = (*_ENDPOINT_FIELDS, "tenant_slugs")
    readonly_fields = fields


@admin.register(MspDelivery)
class MspDeliveryAdmin(_ReadOnly, MspAdminOnlyMixin, admin.ModelAdmin):
    list_display = ("created_at", "tenant_slug", "topic", "endpoint", "status", "attempts")
    list_filter = ("status", "topic")
    search_fields = ("topic", "message_id", "tenant_slug")
    list_select_related = ("endpoint",)
    fields = ("tenant_slug", *_DELIVERY_FIELDS)
    readonly_fields = fields
    date_hierarchy = "created_at"


class OnCallOverrideInline(admin.TabularInline):
    model = OnCallOverride
    formset = BoundedInlineFormSet
    extra = 0


@admin.register(OnCallRotation)
class OnCallRotationAdmin(MspAdminOnlyMixin, admin.ModelAdmin):
    """Rotations and their overrides (MSP admins); who is on call now is in the list."""

    list_display = ("name", "shift", "starts_at", "on_call_now")
    inlines = (OnCallOverrideInline,)

    def has_add_permission(self, request):
        return self._is_msp_admin(request)

    def has_change_permission(self, request, obj=None):
        return self._is_msp_admin(request)

    def has_delete_permission(self, request, obj=None):
        return self._is_msp_admin(request)

    @admin.display(description="On call now")
    def on_call_now(self, obj):
        holder = on_call_now(obj)
        person = User.objects.filter(pk=holder.user_id).first() if holder.user_id else None
        if person is None:
            return "—"
        return f"{person.get_username()} until {holder.until:%Y-%m-%d %H:%M} UTC" + (
            " (override)" if holder.override else ""
        )


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(StaffScopedAdmin, admin.ModelAdmin):
    list_display = ("name", "tenant", "severities", "hours", "repeat")
    list_filter = (("tenant", VisibleTenantListFilter),)
    list_select_related = ("tenant",)


@admin.register(IncidentSignal)
class IncidentSignalAdmin(_ReadOnly, StaffScopedAdmin, admin.ModelAdmin):
    list_display = ("fired_at", "tenant", "incident_id", "key")
    list_filter = (("tenant", VisibleTenantListFilter),)
    list_select_related = ("tenant",)
    readonly_fields = ("tenant", "incident_id", "key", "fired_at", "notified")
