"""Reports in the MSP console: every version of every tenant's reports with links to their
files; a draft quarterly review's summary and proposals are edited here and published with an
action. Published reports are read-only (the database refuses changes)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from operations.reports import services
from operations.reports.models import Report
from tenants.admin.base import StaffScopedAdmin, VisibleTenantListFilter, adopt, fresh_copy

READ_ONLY = (
    "tenant",
    "kind",
    "framework",
    "period_label",
    "version",
    "status",
    "title",
    "time_zone",
    "downloads",
    "html_sha256",
    "pdf_sha256",
    "pdf_pages",
    "pdf_missing_reason",
    "zip_sha256",
    "zip_size",
    "job_run_id",
    "requested_by_label",
    "generated_at",
    "published_at",
    "published_by_label",
)


@admin.register(Report)
class ReportAdmin(StaffScopedAdmin, admin.ModelAdmin):
    list_display = ("title", "tenant", "kind", "period_label", "version", "status", "generated_at")
    list_filter = ("kind", "status", ("tenant", VisibleTenantListFilter))
    list_select_related = ("tenant",)
    search_fields = ("title", "period_label")
    ordering = ("-period_start", "tenant", "kind", "-version")
    fields = (*READ_ONLY, "summary", "proposals")
    readonly_fields = READ_ONLY
    actions = ["publish_drafts"]

    def has_add_permission(self, request, obj=None):
        return False  # made by the job engine (POST …/reports/ or the jobs page)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_published:
            return (*READ_ONLY, "summary", "proposals")
        return super().get_readonly_fields(request, obj)

    @admin.display(description="Files")
    def downloads(self, obj: Report):
        if obj.zip_sha256:
            zipped = reverse("portal_reports:download", args=[obj.tenant.slug, obj.pk, "zip"])
            return format_html('<a href="{}">ZIP</a>', zipped)
        base = reverse("portal_reports:download", args=[obj.tenant.slug, obj.pk, "html"])
        links = format_html('<a href="{}">HTML</a>', base)
        if obj.pdf_sha256:
            pdf = reverse("portal_reports:download", args=[obj.tenant.slug, obj.pk, "pdf"])
            links = format_html('{} · <a href="{}">PDF</a>', links, pdf)
        return links

    def save_model(self, request, obj, form, change):
        stored = fresh_copy(obj)
        fields = {
            n: form.cleaned_data[n] for n in form.changed_data if n in ("summary", "proposals")
        }
        adopt(obj, services.report_draft_update(report=stored, **fields))

    @admin.action(description="Publish the selected draft reviews")
    def publish_drafts(self, request, queryset):
        self.run_on_each(
            request,
            queryset,
            verb="Published",
            run=lambda report: services.report_publish(
                report=report, by_label=request.user.get_username()
            ),
            label=str,
        )
