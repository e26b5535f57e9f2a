"""People: user accounts (msp_admin only), client memberships and staff assignments."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import (
    AdminPasswordChangeForm,
    AdminUserCreationForm,
    UserChangeForm,
)
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import OuterRef

from tenants import services
from tenants.admin.base import (
    AuditedAdminMixin,
    BoundedRelationsMixin,
    MspAdminOnlyMixin,
    StaffScopedAdmin,
    VisibleTenantListFilter,
    adopt,
    fresh_copy,
)
from tenants.admin.tenant import MembershipForm, member_candidates, staff_candidates
from tenants.audit import audit_record
from tenants.form_fields import BoundedModelChoiceField
from tenants.models import (
    AuditAction,
    Membership,
    MspRole,
    StaffAssignment,
    Tenant,
    TenantRole,
    User,
)
from tenants.selectors import mfa_enrolled


def _membership_tenant(user: User) -> Tenant | None:
    membership = getattr(user, "membership", None)
    return membership.tenant if membership is not None else None


# --- Users --------------------------------------------------------------------------------------


class UserCreateForm(AdminUserCreationForm):
    """A new account is either MSP staff (a role) or a client user (a tenant and a role)."""

    tenant = BoundedModelChoiceField(
        queryset=Tenant.objects.order_by("name"),
        required=False,
        help_text="For a client user: the one tenant they belong to.",
    )
    tenant_role = forms.ChoiceField(
        choices=[("", "---------"), *TenantRole.choices], required=False, label="Tenant role"
    )

    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("username", "email", "first_name", "last_name", "msp_role")

    def clean(self):
        cleaned = super().clean()
        msp_role, tenant = cleaned.get("msp_role"), cleaned.get("tenant")
        if msp_role and tenant:
            raise ValidationError("MSP staff belong to no tenant: choose a role or a tenant.")
        if not msp_role and not tenant:
            raise ValidationError(
                "Choose an MSP role for staff, or a tenant and tenant role for a client user."
            )
        if tenant and not cleaned.get("tenant_role"):
            self.add_error("tenant_role", "A client user needs a role in their tenant.")
        return cleaned


class UserEditForm(UserChangeForm):
    acting_user = None  # set per request by UserAdmin.get_form

    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"

    def clean_msp_role(self):
        role = self.cleaned_data.get("msp_role", "")
        if role and Membership.objects.filter(user=self.instance).exists():
            raise ValidationError(
                "This user is a member of a client tenant; remove the membership before "
                "making them MSP staff."
            )
        return role

    def clean(self):
        cleaned = super().clean()
        acting = self.acting_user
        if acting is not None and self.instance.pk == acting.pk:
            # The last door out of the admin must not be closed from the inside.
            if cleaned.get("msp_role", MspRole.ADMIN) != MspRole.ADMIN:
                self.add_error("msp_role", "You cannot remove your own msp_admin role.")
            if not cleaned.get("is_active", True):
                self.add_error("is_active", "You cannot deactivate your own account.")
        return cleaned


class AuditedPasswordChangeForm(AdminPasswordChangeForm):
    def save(self, commit=True):
        user = super().save(commit=commit)
        if commit:
            outcome = "changed" if user.has_usable_password() else "disabled"
            audit_record(
                tenant=_membership_tenant(user),
                action=AuditAction.UPDATE,
                instance=user,
                changes={"password": [None, outcome]},
            )
        return user


@admin.register(User)
class UserAdmin(MspAdminOnlyMixin, AuditedAdminMixin, BoundedRelationsMixin, DjangoUserAdmin):
    """Accounts are msp_admin's business only; engineers and analysts do not see this admin."""

    form = UserEditForm
    add_form = UserCreateForm
    change_password_form = AuditedPasswordChangeForm
    list_display = (
        "username",
        "email",
        "first_name",
        "last_name",
        "msp_role",
        "membership_tenant",
        "membership_role",
        "is_active",
        "two_factor",
        "last_login",
    )
    list_filter = ("msp_role", "is_active", "membership__role", "membership__tenant")
    actions = ("reset_two_factor",)
    list_select_related = ("membership__tenant",)
    search_fields = ("username", "first_name", "last_name", "email")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email", "timezone")}),
        ("Role", {"fields": ("msp_role", "membership_summary", "is_active")}),
        ("Admin access (follows the MSP role)", {"fields": ("is_staff", "is_superuser")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "email", "first_name", "last_name")}),
        (
            "Role: MSP staff, or a client user of one tenant",
            {"classes": ("wide",), "fields": ("msp_role", "tenant", "tenant_role")},
        ),
        (
            "Password",
            {"classes": ("wide",), "fields": ("usable_password", "password1", "password2")},
        ),
    )
    readonly_fields = (
        "membership_summary",
        "is_staff",
        "is_superuser",
        "last_login",
        "date_joined",
    )

    def has_add_permission(self, request):
        return self._is_msp_admin(request)

    def has_change_permission(self, request, obj=None):
        return self._is_msp_admin(request)

    def has_delete_permission(self, request, obj=None):
        return self._is_msp_admin(request)

    def audit_tenant(self, obj):
        return _membership_tenant(obj)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(has_mfa=mfa_enrolled(user=OuterRef("pk")))

    @admin.display(description="Two-factor", boolean=True, ordering="has_mfa")
    def two_factor(self, obj):
        return obj.has_mfa

    @admin.action(
        description="Reset two-factor sign-in (lost device: set up again at next sign-in)",
        permissions=["change"],
    )
    def reset_two_factor(self, request, queryset):
        for user in queryset:
            services.mfa_reset(user=user)
        self.message_user(
            request,
            f"Reset two-factor sign-in for {queryset.count()} user(s); each sets it up again "
            "at their next sign-in where it is required.",
            messages.SUCCESS,
        )

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is not None:
            form.acting_user = request.user  # a fresh class per call: safe to set
        return form

    @admin.display(description="Tenant", ordering="membership__tenant__name")
    def membership_tenant(self, obj):
        tenant = _membership_tenant(obj)
        return tenant.name if tenant else "-"

    @admin.display(description="Tenant role", ordering="membership__role")
    def membership_role(self, obj):
        membership = getattr(obj, "membership", None)
        return membership.get_role_display() if membership else "-"

    @admin.display(description="Membership")
    def membership_summary(self, obj):
        membership = getattr(obj, "membership", None)
        if membership is None:
            return "None (MSP staff or not placed in a tenant)"
        return f"{membership.tenant} as {membership.get_role_display()}"

    def save_model(self, request, obj, form, change):
        if change:
            # Admin access follows the role: staff get in, msp_admin is superuser, clients never.
            obj.is_staff = bool(obj.msp_role)
            obj.is_superuser = obj.msp_role == MspRole.ADMIN
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        password = data.get("password1") if data.get("set_usable_password") else None
        profile = {name: data.get(name, "") for name in ("email", "first_name", "last_name")}
        if data.get("msp_role"):
            created = services.staff_user_create(
                username=data["username"], msp_role=data["msp_role"], password=password, **profile
            )
        else:
            created = services.membership_create(
                tenant=data["tenant"],
                username=data["username"],
                role=data["tenant_role"],
                password=password,
                **profile,
            ).user
        adopt(obj, created)


# --- Memberships and staff assignments -------------------------------------------------------


@admin.register(Membership)
class MembershipAdmin(StaffScopedAdmin, admin.ModelAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role", ("tenant", VisibleTenantListFilter))
    list_select_related = ("user", "tenant")
    search_fields = ("user__username", "user__email", "tenant__name")
    raw_id_fields = ("user",)
    form = MembershipForm
    fields = ("user", "tenant", "role", "created_at")

    def get_readonly_fields(self, request, obj=None):
        # A person changes tenant by being removed and added, never by an edit.
        return ("user", "tenant", "created_at") if obj is not None else ("created_at",)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = member_candidates(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            services.membership_update(
                tenant=obj.tenant, membership=fresh_copy(obj), role=form.cleaned_data["role"]
            )
        else:
            super().save_model(request, obj, form, change)  # no service links an existing user

    def delete_model(self, request, obj):
        services.membership_remove(tenant=obj.tenant, membership=obj)


@admin.register(StaffAssignment)
class StaffAssignmentAdmin(StaffScopedAdmin, admin.ModelAdmin):
    """Account teams. Assignments decide what staff may see, so only msp_admin edits them."""

    write_roles = frozenset({MspRole.ADMIN})
    list_display = ("user", "staff_role", "tenant", "created_at")
    list_filter = (("tenant", VisibleTenantListFilter), "user__msp_role")
    list_select_related = ("user", "tenant")
    search_fields = ("user__username", "tenant__name")
    fields = ("user", "tenant", "created_at")
    readonly_fields = ("created_at",)

    def has_change_permission(self, request, obj=None):
        return False  # An assignment is added or removed, never edited.

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = staff_candidates()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Role", ordering="user__msp_role")
    def staff_role(self, obj):
        return obj.user.get_msp_role_display()

    def save_model(self, request, obj, form, change):
        adopt(obj, services.staff_assign(tenant=obj.tenant, user=obj.user))

    def delete_model(self, request, obj):
        services.staff_unassign(tenant=obj.tenant, assignment=obj)


# Django's own group admin, with the bounded relation pickers.
admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(BoundedRelationsMixin, DjangoGroupAdmin):
    pass
