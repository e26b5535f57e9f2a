"""Readiness gates in the MSP admin: the overrides MSP admins granted (read-only: an override is
granted through ``gates.ai_system_gate_override``, from the API), and the staff pipeline page at
``/admin/readiness/gateoverride/pipeline/``. Registered from ``ReadinessConfig.ready()``."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse

from operations.inventory.models import Stage
from operations.readiness.gates import GATE_STATUSES
from operations.readiness.models import GateOverride
from operations.readiness.pipeline import pipeline_rows_filtered, readiness_pipeline
from tenants.admin.base import StaffScopedAdmin, VisibleTenantListFilter
from tenants.selectors import tenants_visible_to


@admin.register(GateOverride)
class GateOverrideAdmin(StaffScopedAdmin, admin.ModelAdmin):
    list_display = ("ai_system", "tenant", "granted_by", "granted_at", "criteria_overridden")
    list_filter = (("tenant", VisibleTenantListFilter), "granted_at")
    list_select_related = ("tenant", "ai_system", "granted_by")
    search_fields = ("ai_system__name", "reason", "tenant__name")
    ordering = ("-granted_at", "-id")
    fields = ("tenant", "ai_system", "reason", "failing_criteria", "granted_by", "granted_at")
    readonly_fields = fields
    change_list_template = "readiness/admin/gateoverride_change_list.html"

    # Overrides are decisions on the record: granted by the service, never edited or removed.
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Criteria overridden")
    def criteria_overridden(self, obj):
        return "; ".join(
            str(row.get("title", row.get("key", ""))) if isinstance(row, dict) else str(row)
            for row in obj.failing_criteria
        )

    def get_urls(self):
        return [
            path(
                "pipeline/",
                self.admin_site.admin_view(self.pipeline_view),
                name="readiness_pipeline",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        pipeline_url = reverse(f"{self.admin_site.name}:readiness_pipeline")
        return super().changelist_view(
            request, {**(extra_context or {}), "pipeline_url": pipeline_url}
        )

    def pipeline_view(self, request):
        """Every AI system of the tenants the staff member may see, by stage, with its gates."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        stalled = {"yes": True, "no": False}.get(request.GET.get("stalled", ""))
        chosen = {
            "stage": request.GET.get("stage", ""),
            "gate_status": request.GET.get("gate_status", ""),
            "tenant": request.GET.get("tenant", ""),
            "stalled": request.GET.get("stalled", ""),
        }
        pipeline = readiness_pipeline(tenants=tenants_visible_to(request.user))
        rows = pipeline_rows_filtered(
            pipeline.rows,
            stage=chosen["stage"] if chosen["stage"] in Stage.values else "",
            gate_status=chosen["gate_status"] if chosen["gate_status"] in GATE_STATUSES else "",
            tenant_slug=chosen["tenant"],
            stalled=stalled,
        )
        by_stage = [
            (label, [row for row in rows if row.ai_system.stage == stage])
            for stage, label in Stage.choices
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "AI pipeline: pilot → production",
            "opts": self.model._meta,
            "figures": pipeline.figures,
            "by_stage": [(label, stage_rows) for label, stage_rows in by_stage if stage_rows],
            "shown": len(rows),
            "tenants": pipeline.tenants,
            "stages": Stage.choices,
            "gate_statuses": GATE_STATUSES,
            "chosen": chosen,
            "overrides_url": reverse(f"{self.admin_site.name}:readiness_gateoverride_changelist"),
        }
        return TemplateResponse(request, "readiness/admin/pipeline.html", context)
