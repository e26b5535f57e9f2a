"""The inventory in the MSP admin: every model, scoped to the staff member's tenants, written
through the inventory services (validated and audited like the API).

Forms run the services' change rules in ``clean()`` (a retired system gains no deployment, a
cluster with nodes keeps its kind), so a refusal is a form error, never a server error. An AI
system's stage is read-only on its change page and moves by the lifecycle actions.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count

from operations.inventory import services
from operations.inventory.models import (
    AISystem,
    AISystemDataset,
    CloudAccount,
    ComputeKind,
    ComputeResource,
    Dataset,
    Deployment,
    GpuDevice,
    Link,
    Site,
    Stage,
)
from operations.inventory.registry import inventory_writes
from tenants.admin.base import (
    AuditedInlineFormSet,
    StaffScopedAdmin,
    StaffScopedTabularInline,
    VisibleTenantListFilter,
    adopt,
    fresh_copy,
)

TENANT_FILTER = ("tenant", VisibleTenantListFilter)
# Endpoints and runbooks are https unless someone types a scheme.
URL_FIELDS = {models.URLField: {"assume_scheme": "https"}}


def _model_fields(form: forms.ModelForm, names=None) -> dict:
    """Cleaned values of the form's editable model fields (all, or only ``names``)."""
    model_names = {field.name for field in form._meta.model._meta.concrete_fields}
    model_names.discard("tenant")
    chosen = form.cleaned_data if names is None else names
    return {name: form.cleaned_data[name] for name in chosen if name in model_names}


class ServiceRulesForm(forms.ModelForm):
    """Runs the model's change rules (``registry.inventory_writes``) while validating, so
    refusals are form errors.

    ``clean()`` runs before the form copies its values onto ``instance``, so ``instance`` is
    still the stored row there.
    """

    def clean(self):
        cleaned = super().clean()
        writes = inventory_writes(self._meta.model)
        try:
            if self.instance.pk is None:
                writes.run_checks(instance=None, fields=_model_fields(self))
            else:
                changed = _model_fields(self, [n for n in self.changed_data if n in cleaned])
                writes.run_checks(instance=self.instance, fields=changed)
        except ValidationError as error:
            for name, problems in error.message_dict.items():
                self.add_error(name if name in self.fields else None, problems)
        return cleaned


def _changed_fields(form: forms.ModelForm) -> dict:
    return _model_fields(form, [n for n in form.changed_data if n in form.cleaned_data])


class ServiceAdmin(StaffScopedAdmin, admin.ModelAdmin):
    """Creates, updates and deletes through the services ``registry.inventory_writes`` names
    for the model (the services audit), and runs its change rules in the form."""

    form = ServiceRulesForm
    list_per_page = 50
    formfield_overrides = URL_FIELDS

    def save_model(self, request, obj, form, change):
        writes = inventory_writes(self.model)
        if change:
            stored = fresh_copy(obj)
            saved = writes.update(tenant=stored.tenant, instance=stored, **_changed_fields(form))
        else:
            saved = writes.create(tenant=obj.tenant, **_model_fields(form))
        adopt(obj, saved)

    def delete_model(self, request, obj):
        inventory_writes(self.model).delete(tenant=obj.tenant, instance=obj)


class ServiceInlineFormSet(AuditedInlineFormSet):
    """Inline rows written through the model's services; new rows take the parent's tenant."""

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        if form.instance.pk is None:
            # Set before validation: the model checks its relations against its tenant.
            form.instance.tenant_id = self.instance.tenant_id
        return form

    def save_new(self, form, commit=True):
        if not commit:
            return super().save_new(form, commit=False)
        fields = {**_model_fields(form), self.fk.name: self.instance}
        return inventory_writes(self.model).create(tenant=self.instance.tenant, **fields)

    def save_existing(self, form, obj, commit=True):
        if not commit:
            return super().save_existing(form, obj, commit=False)
        stored = fresh_copy(obj)
        return inventory_writes(self.model).update(
            tenant=stored.tenant, instance=stored, **_changed_fields(form)
        )

    def delete_existing(self, obj, commit=True):
        if commit:
            inventory_writes(self.model).delete(tenant=obj.tenant, instance=obj)


# --- Sites, links, cloud accounts ---------------------------------------------------------------


@admin.register(Site)
class SiteAdmin(ServiceAdmin):
    list_display = ("code", "name", "kind", "country", "region", "provider", "tenant")
    list_filter = ("kind", ("country", admin.AllValuesFieldListFilter), TENANT_FILTER)
    list_select_related = ("tenant",)
    search_fields = ("code", "name", "region", "provider", "tenant__name")
    ordering = ("tenant__name", "code")
    fields = ("code", "name", "kind", "country", "region", "provider")


@admin.register(Link)
class LinkAdmin(ServiceAdmin):
    list_display = (
        "__str__",
        "site_a",
        "site_b",
        "bandwidth_mbps",
        "latency_ms",
        "redundancy",
        "tenant",
    )
    list_filter = ("redundancy", TENANT_FILTER)
    list_select_related = ("tenant", "site_a", "site_b")
    search_fields = ("site_a__code", "site_b__code", "provider", "tenant__name")
    autocomplete_fields = ("site_a", "site_b")
    ordering = ("tenant__name", "site_a__code", "site_b__code")
    fields = ("site_a", "site_b", "bandwidth_mbps", "latency_ms", "redundancy", "provider")


@admin.register(CloudAccount)
class CloudAccountAdmin(ServiceAdmin):
    list_display = ("account_id", "provider", "name", "monthly_budget", "currency", "tenant")
    list_filter = ("provider", "currency", TENANT_FILTER)
    list_select_related = ("tenant",)
    search_fields = ("account_id", "name", "tenant__name")
    ordering = ("tenant__name", "provider", "account_id")
    fields = ("provider", "account_id", "name", "monthly_budget", "currency")


# --- Compute ------------------------------------------------------------------------------------


class NodeInline(StaffScopedTabularInline):
    """The nodes of a GPU cluster."""

    model = ComputeResource
    fk_name = "cluster"
    formset = ServiceInlineFormSet
    fields = (
        "hostname",
        "kind",
        "status",
        "gpu_model",
        "gpu_count",
        "gpu_memory_gb",
        "hourly_cost",
    )
    extra = 0
    verbose_name = "node"
    verbose_name_plural = "nodes"


@admin.register(ComputeResource)
class ComputeResourceAdmin(ServiceAdmin):
    list_display = (
        "hostname",
        "kind",
        "status",
        "site",
        "cluster",
        "gpu_model",
        "gpu_count",
        "hourly_cost",
        "tenant",
    )
    list_filter = ("kind", "status", "gpu_model", TENANT_FILTER)
    list_select_related = ("tenant", "site", "cluster")
    search_fields = ("hostname", "gpu_model", "site__code", "tenant__name")
    autocomplete_fields = ("site", "cluster", "cloud_account")
    ordering = ("tenant__name", "hostname")
    fields = (
        "hostname",
        "kind",
        "status",
        "site",
        "cluster",
        "cloud_account",
        ("gpu_model", "gpu_count", "gpu_memory_gb"),
        "hourly_cost",
        "gpu_uuids",
    )

    inlines = (NodeInline,)

    def get_inline_instances(self, request, obj=None):
        # Nodes belong under clusters only.
        if obj is None or obj.kind != ComputeKind.GPU_CLUSTER:
            return []
        return super().get_inline_instances(request, obj)


@admin.register(GpuDevice)
class GpuDeviceAdmin(ServiceAdmin):
    list_display = (
        "__str__",
        "compute",
        "index",
        "mig_instance",
        "uuid",
        "model_name",
        "last_seen_at",
        "tenant",
    )
    list_filter = ("model_name", TENANT_FILTER)
    list_select_related = ("tenant", "compute")
    search_fields = ("uuid", "model_name", "compute__hostname", "tenant__name")
    autocomplete_fields = ("compute",)
    ordering = ("tenant__name", "compute__hostname", "index", "mig_instance")
    fields = ("compute", "index", "uuid", ("mig_instance", "mig_profile"), "model_name")
    readonly_fields = ("first_seen_at", "last_seen_at")


# --- AI systems, their deployments and dataset usage -------------------------------------------


class DeploymentInline(StaffScopedTabularInline):
    model = Deployment
    form = ServiceRulesForm
    formset = ServiceInlineFormSet
    fields = (
        "name",
        "model_version",
        "compute",
        "environment",
        "monitoring_enabled",
        "runbook_url",
    )
    autocomplete_fields = ("compute",)
    formfield_overrides = URL_FIELDS
    extra = 0


class DatasetUsageInline(StaffScopedTabularInline):
    model = AISystemDataset
    formset = ServiceInlineFormSet
    fields = ("dataset", "usage")
    autocomplete_fields = ("dataset",)
    extra = 0


@admin.register(AISystem)
class AISystemAdmin(ServiceAdmin):
    list_display = (
        "name",
        "stage",
        "risk_tier",
        "provenance",
        "personal_data",
        "human_oversight",
        "deployment_count",
        "tenant",
    )
    list_filter = ("stage", "risk_tier", "provenance", "personal_data", "generative", TENANT_FILTER)
    list_select_related = ("tenant",)
    search_fields = ("name", "purpose", "business_owner", "vendor", "tenant__name")
    ordering = ("tenant__name", "name")
    inlines = (DeploymentInline, DatasetUsageInline)
    fieldsets = (
        (None, {"fields": ("name", "purpose", "stage")}),
        ("Ownership", {"fields": ("business_owner", "technical_owner")}),
        (
            "Risk",
            {
                "fields": (
                    "risk_tier",
                    "annex_iii_area",
                    "risk_classified_at",
                    "risk_reviewed_at",
                    "personal_data",
                )
            },
        ),
        (
            "Oversight",
            {"fields": ("human_oversight", "human_overseer", "user_facing", "ai_disclosure")},
        ),
        (
            "Model",
            {
                "fields": (
                    "provenance",
                    "vendor",
                    "vendor_assessed_at",
                    "model_name",
                    "model_version",
                    "generative",
                )
            },
        ),
        (
            "Compliance records",
            {
                "fields": (
                    "technical_documentation_url",
                    "fria_required",
                    "fria_completed_at",
                    "eu_database_id",
                )
            },
        ),
    )
    actions = ("move_to_pilot", "move_to_production", "move_to_proposed", "retire")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_deployments=Count("deployments"))

    @admin.display(description="Deployments", ordering="_deployments")
    def deployment_count(self, obj):
        return obj._deployments

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        # A registered system changes stage only along the lifecycle (the actions).
        return (*readonly, "stage") if obj is not None else readonly

    def _transition(self, request, queryset, stage: str) -> None:
        moved = []
        for ai_system in queryset:
            try:
                services.ai_system_transition(
                    tenant=ai_system.tenant, ai_system=ai_system, stage=stage
                )
            except ValidationError as error:
                self.message_user(
                    request,
                    f"{ai_system.tenant}: {ai_system}: {' '.join(error.messages)}",
                    messages.ERROR,
                )
            else:
                moved.append(f"{ai_system.tenant}: {ai_system}")
        if moved:
            self.message_user(request, f"Moved to {stage}: {'; '.join(moved)}.", messages.SUCCESS)

    @admin.action(description="Move selected systems to pilot", permissions=["change"])
    def move_to_pilot(self, request, queryset):
        self._transition(request, queryset, Stage.PILOT)

    @admin.action(description="Move selected systems to production", permissions=["change"])
    def move_to_production(self, request, queryset):
        self._transition(request, queryset, Stage.PRODUCTION)

    @admin.action(description="Move selected systems back to proposed", permissions=["change"])
    def move_to_proposed(self, request, queryset):
        self._transition(request, queryset, Stage.PROPOSED)

    @admin.action(description="Retire selected systems", permissions=["change"])
    def retire(self, request, queryset):
        self._transition(request, queryset, Stage.RETIRED)


@admin.register(Deployment)
class DeploymentAdmin(ServiceAdmin):
    list_display = (
        "name",
        "ai_system",
        "model_version",
        "compute",
        "environment",
        "monitoring_enabled",
        "has_runbook",
        "tenant",
    )
    list_filter = ("environment", "monitoring_enabled", "logging_enabled", TENANT_FILTER)
    list_select_related = ("tenant", "ai_system", "compute")
    search_fields = ("name", "model_version", "ai_system__name", "compute__hostname")
    autocomplete_fields = ("ai_system", "compute")
    ordering = ("tenant__name", "name")

    @admin.display(boolean=True, description="Runbook")
    def has_runbook(self, obj):
        return bool(obj.runbook_url)


@admin.register(Dataset)
class DatasetAdmin(ServiceAdmin):
    list_display = (
        "name",
        "classification",
        "personal_data",
        "residency_country",
        "owner",
        "quality_score",
        "tenant",
    )
    list_filter = (
        "classification",
        "personal_data",
        ("residency_country", admin.AllValuesFieldListFilter),
        TENANT_FILTER,
    )
    list_select_related = ("tenant",)
    search_fields = ("name", "owner", "provenance", "licence", "tenant__name")
    ordering = ("tenant__name", "name")


@admin.register(AISystemDataset)
class AISystemDatasetAdmin(ServiceAdmin):
    list_display = ("ai_system", "dataset", "usage", "tenant")
    list_filter = ("usage", TENANT_FILTER)
    list_select_related = ("tenant", "ai_system", "dataset")
    search_fields = ("ai_system__name", "dataset__name", "tenant__name")
    autocomplete_fields = ("ai_system", "dataset")
    ordering = ("tenant__name", "ai_system__name", "dataset__name")
