"""Tenants: profile, plan, people, checklist and the lifecycle, all through the services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse

from tenants import services
from tenants.admin.base import (
    AuditedInlineFormSet,
    StaffScopedAdmin,
    StaffScopedStackedInline,
    StaffScopedTabularInline,
    adopt,
    fresh_copy,
)
from tenants.admin.onboarding import OnboardingStepInline
from tenants.catalogues import framework_choices
from tenants.durations import duration_label, parse_duration_minutes
from tenants.models import (
    Membership,
    MspRole,
    ServicePlan,
    Severity,
    StaffAssignment,
    Tenant,
    TenantStatus,
)
from tenants.selectors import tenants_visible_to

User = get_user_model()

# The words staff see for each move of the lifecycle; a move not listed is never offered.
LIFECYCLE_LABELS: dict[tuple[str, str], str] = {
    (TenantStatus.PROSPECT, TenantStatus.ONBOARDING): "Start onboarding",
    (TenantStatus.ONBOARDING, TenantStatus.ACTIVE): "Activate",
    (TenantStatus.ACTIVE, TenantStatus.SUSPENDED): "Suspend",
    (TenantStatus.SUSPENDED, TenantStatus.ACTIVE): "Reactivate",
    (TenantStatus.PROSPECT, TenantStatus.OFFBOARDED): "Offboard",
    (TenantStatus.ONBOARDING, TenantStatus.OFFBOARDED): "Offboard",
    (TenantStatus.ACTIVE, TenantStatus.OFFBOARDED): "Offboard",
    (TenantStatus.SUSPENDED, TenantStatus.OFFBOARDED): "Offboard",
}

# Tenant fields the profile form may set; status only moves through the lifecycle.
TENANT_PROFILE_FIELDS = ("name", "slug", "industry", "region", "data_residency", "require_mfa")


def member_candidates(user):
    """Client users a staff member may place in a tenant: unplaced ones, or their tenants'."""
    return User.objects.filter(msp_role="").filter(
        Q(membership__isnull=True) | Q(membership__tenant__in=tenants_visible_to(user))
    )


def staff_candidates():
    """Staff who can be put on an account team (msp_admin already sees every tenant)."""
    return User.objects.filter(
        msp_role__in=[MspRole.ENGINEER, MspRole.ANALYST], is_active=True
    ).order_by("username")


# --- Inlines --------------------------------------------------------------------------------


class ServicePlanFormSet(AuditedInlineFormSet):
    def save_existing(self, form, obj, commit=True):
        if not commit:
            return super().save_existing(form, obj, commit=False)
        changed = {name: form.cleaned_data[name] for name in form.changed_data}
        if not changed:
            return obj
        return services.service_plan_update(tenant=self.instance, **changed)


_WEEKDAY_CHOICES = [
    (0, "Monday"),
    (1, "Tuesday"),
    (2, "Wednesday"),
    (3, "Thursday"),
    (4, "Friday"),
    (5, "Saturday"),
    (6, "Sunday"),
]

SLA_FIELDS = tuple(
    f"{severity.lower()}_{clock}_minutes"
    for severity in Severity.values
    for clock in ("acknowledge", "resolve")
)


class DurationMinutesField(forms.CharField):
    """Minutes shown and typed as a duration ("4 h", "1 d 4 h"), stored as whole minutes."""

    def __init__(self, **kwargs):
        # The model's integer bounds still apply: the model's validators run on save.
        for bound in ("min_value", "max_value", "step_size"):
            kwargs.pop(bound, None)
        kwargs.setdefault("help_text", "e.g. 15 min, 4 h, 1 d 4 h")
        super().__init__(**kwargs)
        self.widget.attrs.setdefault("size", 12)

    def prepare_value(self, value):
        if isinstance(value, int):
            return duration_label(value)
        return value

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            return parse_duration_minutes(value)
        except ValueError as error:
            raise ValidationError(str(error), code="invalid") from error


class ServicePlanForm(forms.ModelForm):
    """The plan as people read it: durations, weekday boxes, a list of frameworks."""

    business_days = forms.TypedMultipleChoiceField(
        choices=_WEEKDAY_CHOICES,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The days business-hours coverage runs on.",
    )
    frameworks_in_scope = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The compliance frameworks the contract covers.",
    )

    class Meta:
        model = ServicePlan
        fields = (
            "tier",
            "coverage",
            "frameworks_in_scope",
            "timezone",
            "business_days",
            "business_hours_start",
            "business_hours_end",
            *SLA_FIELDS,
        )
        field_classes = dict.fromkeys(SLA_FIELDS, DurationMinutesField)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        known = dict(framework_choices())
        # A code named before its framework was loaded stays choosable, so a save keeps it.
        for code in (self.instance.frameworks_in_scope or []) if self.instance.pk else []:
            known.setdefault(code, code)
        self.fields["frameworks_in_scope"].choices = sorted(known.items(), key=lambda i: i[1])

    def clean_business_days(self):
        return sorted(set(self.cleaned_data["business_days"]))


class ServicePlanInline(StaffScopedStackedInline):
    """The contract; created with the tenant by ``tenant_create``, so shown on change only."""

    model = ServicePlan
    form = ServicePlanForm
    formset = ServicePlanFormSet
    can_delete = False
    extra = 0
    max_num = 1
    verbose_name = "service plan"
    verbose_name_plural = "Service plan"
    fieldsets = (
        (None, {"fields": ("tier", "coverage", "frameworks_in_scope")}),
        (
            "Business hours (for business-hours coverage)",
            {
                "fields": (
                    "timezone",
                    "business_days",
                    ("business_hours_start", "business_hours_end"),
                )
            },
        ),
        (
            "SLA targets (acknowledge within, resolve within)",
            {
                "fields": (
                    ("sev1_acknowledge_minutes", "sev1_resolve_minutes"),
                    ("sev2_acknowledge_minutes", "sev2_resolve_minutes"),
                    ("sev3_acknowledge_minutes", "sev3_resolve_minutes"),
                    ("sev4_acknowledge_minutes", "sev4_resolve_minutes"),
                )
            },
        ),
    )

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("user", "role")

    def clean_user(self):
        user = self.cleaned_data["user"]
        if self.instance.pk and self.instance.user_id != user.pk:
            raise ValidationError("To move a person, remove this membership and add a new one.")
        if user.msp_role:
            raise ValidationError("MSP staff are assigned to tenants, not made members.")
        return user


class MembershipFormSet(AuditedInlineFormSet):
    # Adding an existing client user has no service: the base saves and audits it.

    def save_existing(self, form, obj, commit=True):
        if not commit:
            return super().save_existing(form, obj, commit=False)
        return services.membership_update(
            tenant=self.instance, membership=fresh_copy(obj), role=form.cleaned_data["role"]
        )

    def delete_existing(self, obj, commit=True):
        if commit:
            services.membership_remove(tenant=self.instance, membership=obj)


class MembershipInline(StaffScopedTabularInline):
    model = Membership
    form = MembershipForm
    formset = MembershipFormSet
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("user",)
    extra = 0
    verbose_name = "member"
    verbose_name_plural = "Members (removing one deactivates the user and revokes their tokens)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = member_candidates(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class StaffAssignmentFormSet(AuditedInlineFormSet):
    def save_new(self, form, commit=True):
        if not commit:
            return super().save_new(form, commit=False)
        return services.staff_assign(tenant=self.instance, user=form.cleaned_data["user"])

    def save_existing(self, form, obj, commit=True):
        return obj  # An assignment has nothing to change; it is added or removed.

    def delete_existing(self, obj, commit=True):
        if commit:
            services.staff_unassign(tenant=self.instance, assignment=obj)


class StaffAssignmentInline(StaffScopedTabularInline):
    """The account team. Who may see a tenant is msp_admin's decision."""

    model = StaffAssignment
    formset = StaffAssignmentFormSet
    fields = ("user", "staff_role", "created_at")
    readonly_fields = ("staff_role", "created_at")
    write_roles = frozenset({MspRole.ADMIN})
    extra = 0
    verbose_name = "staff assignment"
    verbose_name_plural = "Account team (staff assignments)"

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = staff_candidates()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Role")
    def staff_role(self, obj):
        return obj.user.get_msp_role_display() if obj.pk else ""


# --- Tenant -------------------------------------------------------------------------------------


@admin.register(Tenant)
class TenantAdmin(StaffScopedAdmin, admin.ModelAdmin):
    tenant_field = None  # The tenant is the boundary itself: scoped by pk.
    list_display = (
        "name",
        "slug",
        "status",
        "industry",
        "region",
        "plan_tier",
        "plan_coverage",
        "member_count",
    )
    list_filter = ("status", "region", "industry", "plan__tier", "plan__coverage")
    search_fields = ("name", "slug")
    ordering = ("name",)
    actions = ("start_onboarding", "activate", "suspend", "reactivate", "offboard")
    fieldsets = (
        (None, {"fields": ("name", "slug", "status")}),
        ("Profile", {"fields": ("industry", "region", "data_residency")}),
        ("Sign-in", {"fields": ("require_mfa",)}),
        ("History", {"fields": ("status_changed_at", "created_at", "updated_at")}),
    )
    add_fieldsets = (
        (None, {"fields": ("name", "slug")}),
        ("Profile", {"fields": ("industry", "region", "data_residency")}),
        ("Sign-in", {"fields": ("require_mfa",)}),
    )
    readonly_fields = ("status", "status_changed_at", "created_at", "updated_at")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (ServicePlanInline, MembershipInline, StaffAssignmentInline, OnboardingStepInline)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("plan")
            .annotate(member_count=Count("memberships", distinct=True))
        )

    def has_delete_permission(self, request, obj=None):
        return False  # Tenants are offboarded, never deleted: the audit log points at them.

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        # The slug is in every API URL and integration; it is chosen once.
        return (*readonly, "slug") if obj is not None else readonly

    def get_prepopulated_fields(self, request, obj=None):
        return self.prepopulated_fields if obj is None else {}

    def get_inlines(self, request, obj):
        if obj is None:
            return ()  # The plan comes from tenant_create; people and steps follow on change.
        inlines = [ServicePlanInline, MembershipInline, StaffAssignmentInline]
        if obj.status != TenantStatus.PROSPECT:
            inlines.append(OnboardingStepInline)
        return inlines

    # --- columns

    @admin.display(description="Plan tier", ordering="plan__tier")
    def plan_tier(self, obj):
        plan = getattr(obj, "plan", None)
        return plan.get_tier_display() if plan else "-"

    @admin.display(description="Coverage", ordering="plan__coverage")
    def plan_coverage(self, obj):
        plan = getattr(obj, "plan", None)
        return plan.get_coverage_display() if plan else "-"

    @admin.display(description="Members", ordering="member_count")
    def member_count(self, obj):
        return obj.member_count

    # --- writes

    def save_model(self, request, obj, form, change):
        if change:
            changed = {
                name: form.cleaned_data[name]
                for name in form.changed_data
                if name in TENANT_PROFILE_FIELDS
            }
            saved = fresh_copy(obj)
            if changed:
                saved = services.tenant_update(tenant=saved, **changed)
        else:
            fields = {
                name: form.cleaned_data[name]
                for name in TENANT_PROFILE_FIELDS
                if name in form.cleaned_data
            }
            saved = services.tenant_create(**fields)
            if request.user.msp_role != MspRole.ADMIN:
                # Whoever creates a client is on its account team, or it vanishes from view.
                services.staff_assign(tenant=saved, user=request.user)
        adopt(obj, saved)

    # --- lifecycle

    def lifecycle_transition(self, request, tenants, to_status: str) -> None:
        """Move each tenant through the service; each refusal is reported with its reason.

        Every tenant's move is one transaction: a refused move changes nothing.
        """
        moved = []
        for tenant in tenants:
            try:
                services.tenant_transition(tenant=tenant, to_status=to_status)
            except ValidationError as error:
                self.message_user(request, f"{tenant}: {' '.join(error.messages)}", messages.ERROR)
            else:
                moved.append(str(tenant))
        if moved:
            label = TenantStatus(to_status).label.lower()
            self.message_user(request, f"Now {label}: {', '.join(moved)}.", messages.SUCCESS)

    @admin.action(description="Start onboarding (creates the checklist)", permissions=["change"])
    def start_onboarding(self, request, queryset):
        self.lifecycle_transition(request, queryset, TenantStatus.ONBOARDING)

    @admin.action(description="Activate (onboarding finished)", permissions=["change"])
    def activate(self, request, queryset):
        self.lifecycle_transition(request, queryset, TenantStatus.ACTIVE)

    @admin.action(description="Suspend", permissions=["change"])
    def suspend(self, request, queryset):
        self.lifecycle_transition(request, queryset, TenantStatus.SUSPENDED)

    @admin.action(description="Reactivate (after suspension)", permissions=["change"])
    def reactivate(self, request, queryset):
        self.lifecycle_transition(request, queryset, TenantStatus.ACTIVE)

    @admin.action(description="Offboard", permissions=["change"])
    def offboard(self, request, queryset):
        self.lifecycle_transition(request, queryset, TenantStatus.OFFBOARDED)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/lifecycle/<slug:to_status>/",
                self.admin_site.admin_view(self.lifecycle_view),
                name="{}_{}_lifecycle".format(*info),
            ),
            *super().get_urls(),
        ]

    def lifecycle_view(self, request, object_id, to_status):
        """The change page's lifecycle buttons post here."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        tenant = self.get_object(request, unquote(object_id))
        if tenant is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, tenant):
            raise PermissionDenied
        self.lifecycle_transition(request, [tenant], to_status)
        return HttpResponseRedirect(
            reverse(
                f"{self.admin_site.name}:tenants_tenant_change",
                args=[tenant.pk],
            )
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and self.has_change_permission(request, obj):
            context["lifecycle_buttons"] = [
                {
                    "label": LIFECYCLE_LABELS[(obj.status, to_status)],
                    "to_status": to_status,
                    "url": reverse(
                        f"{self.admin_site.name}:tenants_tenant_lifecycle",
                        args=[obj.pk, to_status],
                    ),
                }
                for to_status in obj.allowed_transitions()
                if (obj.status, to_status) in LIFECYCLE_LABELS
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)
