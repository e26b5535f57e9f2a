"""Telemetry in the MSP admin: hourly rollups to look at (read-only), and each tenant's
retention policy to edit (through ``services.telemetry_policy_update``, audited).

Raw samples have no admin: they are many, and the series API draws them.
"""

from __future__ import annotations

from django.contrib import admin

from operations.telemetry import services
from operations.telemetry.metrics import RESOURCE_KIND_NAMES
from operations.telemetry.models import TelemetryPolicy, TelemetryRollup
from tenants.admin.base import StaffScopedAdmin, VisibleTenantListFilter, adopt, fresh_copy

TENANT_FILTER = ("tenant", VisibleTenantListFilter)


@admin.register(TelemetryRollup)
class TelemetryRollupAdmin(StaffScopedAdmin, admin.ModelAdmin):
    list_display = (
        "bucket",
        "tenant",
        "resource",
        "metric",
        "min_value",
        "max_value",
        "avg_value",
        "sample_count",
    )
    list_filter = (TENANT_FILTER, "metric", "resource_kind")
    list_select_related = ("tenant",)
    ordering = ("-bucket",)
    date_hierarchy = "bucket"
    # Counting every rollup for the paginator is slow on a big table.
    show_full_result_count = False
    list_per_page = 100

    @admin.display(description="resource", ordering="resource_id")
    def resource(self, obj: TelemetryRollup) -> str:
        return f"{RESOURCE_KIND_NAMES.get(obj.resource_kind, obj.resource_kind)} #{obj.resource_id}"

    # Rollups are computed, never typed in.
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TelemetryPolicy)
class TelemetryPolicyAdmin(StaffScopedAdmin, admin.ModelAdmin):
    list_display = ("tenant", "raw_retention_days", "rollup_retention_days", "updated_at")
    list_filter = (TENANT_FILTER,)
    list_select_related = ("tenant",)
    fields = ("raw_retention_days", "rollup_retention_days", "updated_at")
    readonly_fields = ("updated_at",)

    def save_model(self, request, obj, form, change):
        editable = ("raw_retention_days", "rollup_retention_days")
        if change:
            tenant = fresh_copy(obj).tenant
            names = [name for name in form.changed_data if name in editable]
        else:
            tenant, names = obj.tenant, editable
        fields = {name: form.cleaned_data[name] for name in names}
        adopt(obj, services.telemetry_policy_update(tenant=tenant, **fields))
