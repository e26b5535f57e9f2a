"""Recommendations in the MSP admin: read-only rows (scans make them), filters, and actions that
go through the audited lifecycle services, plus "scan these tenants now" through the job engine.
"""

from __future__ import annotations

from django.contrib import admin, messages

from operations.jobs.models import JobTrigger
from operations.jobs.services import job_submit
from operations.optimisation import services
from operations.optimisation.models import Recommendation
from tenants.admin.base import StaffScopedAdmin, VisibleTenantListFilter

TENANT_FILTER = ("tenant", VisibleTenantListFilter)
ADMIN_DISMISS_REASON = "Dismissed from the MSP console: not applicable."


@admin.register(Recommendation)
class RecommendationAdmin(StaffScopedAdmin, admin.ModelAdmin):
    list_display = (
        "title",
        "tenant",
        "kind",
        "status",
        "estimated_monthly_saving",
        "currency",
        "last_seen",
    )
    list_filter = (TENANT_FILTER, "kind", "status", "subject_type")
    list_select_related = ("tenant",)
    search_fields = ("title", "subject_label", "subject_key")
    ordering = ("-estimated_monthly_saving", "id")
    date_hierarchy = "last_seen"
    actions = ("accept_selected", "implement_selected", "dismiss_selected", "scan_tenants_now")
    readonly_fields = [
        field.name for field in Recommendation._meta.fields if field.name not in ("id", "tenant")
    ]
    exclude = ("accepted_by", "implemented_by", "dismissed_by")

    # Scans make recommendations; people move them along with the actions.
    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Accept selected recommendations", permissions=("change",))
    def accept_selected(self, request, queryset):
        self.run_on_each(
            request,
            queryset,
            verb="Accepted",
            label=lambda rec: rec.title,
            run=lambda rec: services.recommendation_accept(
                tenant=rec.tenant, recommendation=rec, user=request.user
            ),
        )

    @admin.action(description="Mark selected as implemented", permissions=("change",))
    def implement_selected(self, request, queryset):
        self.run_on_each(
            request,
            queryset,
            verb="Implemented",
            label=lambda rec: rec.title,
            run=lambda rec: services.recommendation_implement(
                tenant=rec.tenant, recommendation=rec, user=request.user
            ),
        )

    @admin.action(description="Dismiss selected as not applicable", permissions=("change",))
    def dismiss_selected(self, request, queryset):
        self.run_on_each(
            request,
            queryset,
            verb="Dismissed",
            label=lambda rec: rec.title,
            run=lambda rec: services.recommendation_dismiss(
                tenant=rec.tenant,
                recommendation=rec,
                reason=ADMIN_DISMISS_REASON,
                user=request.user,
            ),
        )

    @admin.action(description="Scan the selected rows' tenants now", permissions=("change",))
    def scan_tenants_now(self, request, queryset):
        tenants = {rec.tenant_id: rec.tenant for rec in queryset.select_related("tenant")}
        for tenant in tenants.values():
            job_submit(
                tenant=tenant, kind="optimisation_scan", trigger=JobTrigger.USER, user=request.user
            )
        self.message_user(
            request, f"Queued an optimisation scan for {len(tenants)} tenant(s).", messages.SUCCESS
        )
