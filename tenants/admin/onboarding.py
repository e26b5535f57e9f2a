"""The onboarding checklist: steps come from the service, staff tick them off here."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from tenants import services
from tenants.admin.base import (
    AuditedInlineFormSet,
    StaffScopedAdmin,
    StaffScopedTabularInline,
    VisibleTenantListFilter,
    fresh_copy,
)
from tenants.audit import audited_update
from tenants.models import OnboardingStep


class OnboardingStepForm(forms.ModelForm):
    """A "done" box instead of a raw timestamp: the service stamps when and by whom."""

    done = forms.BooleanField(required=False, label="Done")

    class Meta:
        model = OnboardingStep
        fields = ("notes",)
        widgets = {"notes": forms.Textarea(attrs={"rows": 2, "cols": 40})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.setdefault("done", self.instance.done)


def onboarding_step_save(*, step: OnboardingStep, form: forms.ModelForm, user) -> OnboardingStep:
    """Save a checklist row from ``form``: ticking goes through the service, notes alone too
    are audited. The stored row is used, since the form has already changed ``step``."""
    stored = fresh_copy(step)
    notes_changed = "notes" in form.changed_data
    if "done" in form.changed_data:
        return services.onboarding_step_set_done(
            tenant=stored.tenant,
            step=stored,
            done=form.cleaned_data["done"],
            user=user,
            notes=form.cleaned_data["notes"] if notes_changed else None,
        )
    if notes_changed:
        # Not through onboarding_step_set_done: it would re-stamp completed_at and _by.
        audited_update(
            tenant=stored.tenant, instance=stored, data={"notes": form.cleaned_data["notes"]}
        )
    return stored


class OnboardingStepFormSet(AuditedInlineFormSet):
    def save_existing(self, form, obj, commit=True):
        if not commit:
            return super().save_existing(form, obj, commit=False)
        return onboarding_step_save(step=obj, form=form, user=self.request.user)


class _ChecklistColumns:
    @admin.display(boolean=True, description="Done")
    def done(self, obj):
        return obj.done


class OnboardingStepInline(_ChecklistColumns, StaffScopedTabularInline):
    """The tenant's checklist; steps are created by the lifecycle, never added or deleted here."""

    model = OnboardingStep
    form = OnboardingStepForm
    formset = OnboardingStepFormSet
    fields = ("title", "required", "done", "completed_at", "completed_by", "notes")
    readonly_fields = ("title", "required", "completed_at", "completed_by")
    ordering = ("position", "id")
    extra = 0
    can_delete = False
    verbose_name = "onboarding step"
    verbose_name_plural = "Onboarding checklist"

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("completed_by")


class DoneListFilter(admin.SimpleListFilter):
    title = "done"
    parameter_name = "done"

    def lookups(self, request, model_admin):
        return (("yes", "Done"), ("no", "Open"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(completed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(completed_at__isnull=True)
        return queryset


@admin.register(OnboardingStep)
class OnboardingStepAdmin(_ChecklistColumns, StaffScopedAdmin, admin.ModelAdmin):
    list_display = ("title", "tenant", "required", "done", "completed_at", "completed_by")
    list_filter = (DoneListFilter, "required", ("tenant", VisibleTenantListFilter))
    list_select_related = ("tenant", "completed_by")
    search_fields = ("title", "key", "tenant__name")
    ordering = ("tenant__name", "position", "id")
    form = OnboardingStepForm
    fields = ("tenant", "title", "key", "required", "done", "completed_at", "completed_by", "notes")
    readonly_fields = ("tenant", "title", "key", "required", "completed_at", "completed_by")
    actions = ("mark_done", "mark_open")

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        onboarding_step_save(step=obj, form=form, user=request.user)

    def _set_done(self, request, queryset, *, done: bool) -> None:
        changed = []
        for step in queryset:
            if step.done == done:
                continue
            try:
                services.onboarding_step_set_done(
                    tenant=step.tenant, step=step, done=done, user=request.user
                )
            except ValidationError as error:
                self.message_user(
                    request, f"{step.tenant}: {step}: {' '.join(error.messages)}", messages.ERROR
                )
            else:
                changed.append(f"{step.tenant}: {step}")
        state = "done" if done else "open"
        if changed:
            self.message_user(request, f"Marked {state}: {'; '.join(changed)}.", messages.SUCCESS)
        else:
            self.message_user(request, f"Nothing to change: the steps were already {state}.")

    @admin.action(description="Mark selected steps done", permissions=["change"])
    def mark_done(self, request, queryset):
        self._set_done(request, queryset, done=True)

    @admin.action(description="Mark selected steps open again", permissions=["change"])
    def mark_open(self, request, queryset):
        self._set_done(request, queryset, done=False)
