"""The outbox in the MSP console: read-only, so staff can see what integrations will receive."""

from __future__ import annotations

from django.contrib import admin

from operations.events.models import OutboxEvent
from tenants.admin.base import StaffScopedAdmin, VisibleTenantListFilter


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
