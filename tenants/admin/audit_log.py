"""The audit log: read-only for everyone, msp_admin included."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from tenants.admin.base import StaffScopedAdmin, VisibleTenantListFilter
from tenants.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(StaffScopedAdmin, admin.ModelAdmin):
    """Staff see their tenants' events; msp_admin also sees MSP-wide (tenant-less) events."""

    list_display = (
        "occurred_at",
        "tenant",
        "actor_label",
        "source",
        "action",
        "object_type",
        "object_repr",
        "request_id",
        "source_address",
    )
    list_filter = ("action", "source", ("tenant", VisibleTenantListFilter))
    list_select_related = ("tenant",)
    search_fields = ("object_repr", "object_type", "object_id", "actor_label", "request_id")
    date_hierarchy = "occurred_at"
    # The log only grows: skip the unfiltered count on every filtered page.
    show_full_result_count = False
    actions = None  # No bulk delete, nor any other action.
    fields = (
        "occurred_at",
        "tenant",
        "actor_label",
        "actor_user",
        "actor_token",
        "source",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "changes_display",
        "request_id",
        "source_address",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Changes")
    def changes_display(self, obj):
        return format_html(
            "<pre style='white-space: pre-wrap'>{}</pre>",
            json.dumps(obj.changes, indent=2, sort_keys=True, ensure_ascii=False),
        )
