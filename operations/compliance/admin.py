"""Compliance in the MSP console: frameworks and controls (read-only, loaded from the data
files), and per tenant the scans, findings and scores (read-only, computed) and waivers
(written through the audited services)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models

from operations.compliance import services
from operations.compliance.models import (
    ComplianceScan,
    Control,
    Finding,
    Framework,
    Score,
    Waiver,
)
from tenants.admin.base import (
    BoundedInlineFormSet,
    StaffScopedAdmin,
    VisibleTenantListFilter,
    adopt,
    fresh_copy,
    is_admin_staff,
)

TENANT_FILTER = ("tenant", VisibleTenantListFilter)
URL_FIELDS = {models.URLField: {"assume_scheme": "https"}}
WAIVER_FIELDS = ("check_code", "subject_type", "subject_id", "reason", "approved_by", "expires_at")


class ReadOnlyAdminMixin:
    """Computed or loaded from files: looked at, never typed in."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ControlInline(admin.TabularInline):
    model = Control
    formset = BoundedInlineFormSet
    fields = ("code", "group", "title", "summary")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return is_admin_staff(request.user)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Framework)
class FrameworkAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    formfield_overrides = URL_FIELDS
    list_display = ("code", "version", "title", "publisher", "source_file", "loaded_at")
    search_fields = ("code", "title")
    inlines = (ControlInline,)

    def has_module_permission(self, request):
        return is_admin_staff(request.user)

    def has_view_permission(self, request, obj=None):
        return is_admin_staff(request.user)


@admin.register(ComplianceScan)
class ComplianceScanAdmin(ReadOnlyAdminMixin, StaffScopedAdmin, admin.ModelAdmin):
    list_display = (
        "started_at",
        "tenant",
        "passed",
        "failed",
        "waived",
        "not_applicable",
        "new_failures",
        "resolved",
        "job_run_id",
    )
    list_filter = (TENANT_FILTER,)
    list_select_related = ("tenant",)
    ordering = ("-started_at",)


@admin.register(Finding)
class FindingAdmin(ReadOnlyAdminMixin, StaffScopedAdmin, admin.ModelAdmin):
    list_display = (
        "check_code",
        "subject_type",
        "subject_label",
        "status",
        "severity",
        "first_seen",
        "last_seen",
        "resolved_at",
        "tenant",
    )
    list_filter = ("status", "severity", "subject_type", "check_code", TENANT_FILTER)
    list_select_related = ("tenant",)
    search_fields = ("subject_label", "detail", "check_code")
    ordering = ("tenant__name", "check_code", "subject_type", "subject_id")
    show_full_result_count = False


@admin.register(Score)
class ScoreAdmin(ReadOnlyAdminMixin, StaffScopedAdmin, admin.ModelAdmin):
    list_display = (
        "computed_at",
        "tenant",
        "framework",
        "score",
        "pass_rate",
        "controls_passed",
        "controls_assessed",
        "controls_total",
    )
    list_filter = ("framework__code", TENANT_FILTER)
    list_select_related = ("tenant", "framework")
    ordering = ("-computed_at",)


class WaiverForm(forms.ModelForm):
    """Applies the service's rules (known and waivable check, subject in the tenant, future
    expiry) as form errors, before anything is saved."""

    class Meta:
        model = Waiver
        fields = WAIVER_FIELDS

    def clean(self):
        cleaned = super().clean()
        tenant = cleaned.get("tenant") or getattr(self.instance, "tenant", None)
        if self.instance.pk is None and tenant is None:
            return cleaned
        names = WAIVER_FIELDS if self.instance.pk is None else self.changed_data
        fields = {n: cleaned.get(n) for n in names if n in WAIVER_FIELDS and n in cleaned}
        try:
            services.waiver_validate(
                tenant=tenant, fields=fields, instance=self.instance if self.instance.pk else None
            )
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                target = {"check": "check_code"}.get(field, field)
                self.add_error(target if target in self.fields else None, messages)
        return cleaned


@admin.register(Waiver)
class WaiverAdmin(StaffScopedAdmin, admin.ModelAdmin):
    list_display = (
        "check_code",
        "subject_type",
        "subject_id",
        "approved_by",
        "expires_at",
        "tenant",
    )
    list_filter = ("check_code", TENANT_FILTER)
    list_select_related = ("tenant",)
    search_fields = ("check_code", "reason", "approved_by")
    fields = WAIVER_FIELDS
    form = WaiverForm

    def save_model(self, request, obj, form, change):
        if change:
            stored = fresh_copy(obj)
            fields = {n: form.cleaned_data[n] for n in form.changed_data if n in WAIVER_FIELDS}
            saved = services.waiver_update(tenant=stored.tenant, waiver=stored, **fields)
        else:
            fields = {n: form.cleaned_data[n] for n in WAIVER_FIELDS}
            saved = services.waiver_create(tenant=obj.tenant, created_by=request.user, **fields)
        adopt(obj, saved)

    def delete_model(self, request, obj):
        services.waiver_delete(tenant=obj.tenant, waiver=obj)
