"""The base every admin of a tenant-bound model uses, in this app and in later ones.

``StaffScopedAdmin`` (with ``admin.ModelAdmin``) and ``StaffScopedInline`` (with a tabular or
stacked inline) give:

- access by MSP role: active MSP staff may view; ``write_roles`` (msp_admin and msp_engineer by
  default) may add, change and delete; msp_analyst is read-only; anyone else sees nothing;
- rows limited to the tenants the user may see (``tenants_visible_to``), also in the tenant
  choices of forms and list filters. ``StaffAdminScopeMiddleware`` has already entered the
  matching tenant scope; with no visible tenant there is no scope and no row;
- an audit event for every write (``save_model``, ``delete_model``, ``delete_queryset`` and
  every inline row). Admins whose model has a service override ``save_model`` /
  ``delete_model`` or the inline's formset hooks (``save_new``, ``save_existing``,
  ``delete_existing``) to call it; services record their own audit events.

A tenant-owned model's ``tenant`` is not editable; on the add page the base adds a tenant
picker limited to the visible tenants.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.db import models, transaction
from django.forms.models import BaseInlineFormSet

from tenants.audit import audit_record, audit_snapshot, audited_create, audited_update
from tenants.form_fields import (
    BoundedAutocompleteSelect,
    BoundedAutocompleteSelectMultiple,
    BoundedModelChoiceField,
    BoundedModelMultipleChoiceField,
)
from tenants.models import AuditAction, MspRole, Tenant
from tenants.scoping import TenantOwnedModel, active_scope, tenant_scope
from tenants.selectors import tenants_visible_to

STAFF_WRITE_ROLES = frozenset({MspRole.ADMIN, MspRole.ENGINEER})


def is_admin_staff(user) -> bool:
    """Active MSP staff with admin access; client users never qualify."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and getattr(user, "msp_role", "")
    )


def tenant_of(obj: models.Model, tenant_field: str | None = "tenant") -> Tenant | None:
    """The tenant an object belongs to: itself for a tenant, else its ``tenant_field``."""
    if isinstance(obj, Tenant):
        return obj
    if tenant_field is None:
        return None
    return getattr(obj, tenant_field, None)


def fresh_copy(obj: models.Model) -> models.Model | None:
    """The row as stored (forms and actions mutate their instance before saving)."""
    if obj.pk is None:
        return None
    # The default manager: tenant-owned rows are read inside the request's tenant scope.
    return type(obj)._default_manager.filter(pk=obj.pk).first()


def stored_snapshot(obj: models.Model) -> dict:
    """The "before" of an audit diff: the stored row's values, empty when there is none."""
    stored = fresh_copy(obj)
    return audit_snapshot(stored) if stored is not None else {}


def adopt(target: models.Model, source: models.Model) -> None:
    """Make the admin's unsaved ``target`` the row a service created (the admin redirects to it)."""
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db


def deleted_changes(obj: models.Model) -> dict:
    return {key: [value, None] for key, value in audit_snapshot(obj).items()}


def audited_save(*, obj: models.Model, tenant: Tenant | None, before: dict | None) -> None:
    """Save ``obj``, validated by its form, and record a create (``before`` is None) or an
    update with its diff."""
    if before is None:
        audited_create(tenant=tenant, instance=obj, validate=False)
    else:
        audited_update(tenant=tenant, instance=obj, data={}, before=before, validate=False)


def audited_delete(*, obj: models.Model, tenant: Tenant | None) -> None:
    audit_record(
        tenant=tenant, action=AuditAction.DELETE, instance=obj, changes=deleted_changes(obj)
    )
    obj.delete()


class MspAdminOnlyMixin:
    """An admin page that only MSP admins open (people, sign-in records)."""

    def _is_msp_admin(self, request) -> bool:
        return is_admin_staff(request.user) and request.user.is_msp_admin

    def has_module_permission(self, request):
        return self._is_msp_admin(request)

    def has_view_permission(self, request, obj=None):
        return self._is_msp_admin(request)


class VisibleTenantListFilter(admin.RelatedFieldListFilter):
    """A tenant filter offering only the tenants the user may see (never all tenant names)."""

    def field_choices(self, field, request, model_admin):
        tenants = tenants_visible_to(request.user).order_by("name")
        return [(tenant.pk, str(tenant)) for tenant in tenants]


class _StaffPermissions:
    """Role-based access; Django's per-model permissions play no part."""

    write_roles: frozenset[str] = STAFF_WRITE_ROLES

    def can_write(self, request) -> bool:
        user = request.user
        return is_admin_staff(user) and user.msp_role in self.write_roles

    def has_module_permission(self, request):
        return is_admin_staff(request.user)

    def has_view_permission(self, request, obj=None):
        return is_admin_staff(request.user)

    def has_add_permission(self, request, obj=None):
        return self.can_write(request)

    def has_change_permission(self, request, obj=None):
        return self.can_write(request)

    def has_delete_permission(self, request, obj=None):
        return self.can_write(request)


class BoundedRelationsMixin:
    """Relation pickers that answer "not one of the choices" for an id no database could bind
    (``tenants.form_fields``) instead of a server error."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs.setdefault("form_class", BoundedModelChoiceField)
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            db = kwargs.get("using")
            kwargs["widget"] = BoundedAutocompleteSelect(db_field, self.admin_site, using=db)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs.setdefault("form_class", BoundedModelMultipleChoiceField)
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            db = kwargs.get("using")
            kwargs["widget"] = BoundedAutocompleteSelectMultiple(
                db_field, self.admin_site, using=db
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class _TenantScoping(BoundedRelationsMixin):
    """Rows limited to the tenants the user may see."""

    # The model's foreign key to Tenant; None when the model is Tenant itself.
    tenant_field: str | None = "tenant"

    def scope_queryset(self, request, queryset: models.QuerySet) -> models.QuerySet:
        model = queryset.model
        if issubclass(model, TenantOwnedModel) and active_scope() is None:
            # No visible tenant, so the middleware entered no scope: nothing to show.
            return model._default_manager.unscoped().none()
        user = request.user
        if not is_admin_staff(user):
            return queryset.none()
        if user.is_msp_admin:
            # All tenants, and also rows that belong to no tenant (MSP-wide events, tokens).
            return queryset
        lookup = "pk__in" if self.tenant_field is None else f"{self.tenant_field}__in"
        return queryset.filter(**{lookup: tenants_visible_to(user)})

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == self.tenant_field and db_field.related_model is Tenant:
            kwargs["queryset"] = tenants_visible_to(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def audit_tenant(self, obj: models.Model) -> Tenant | None:
        return tenant_of(obj, self.tenant_field)


class TenantPickerFormMixin:
    """Sets a non-editable ``tenant`` from the form's picker before model validation.

    The picker is a declared form field, not a model field, so Django would leave it out of
    unique and constraint checks; they must include it (e.g. unique per tenant).
    """

    tenant_field_name = "tenant"

    def clean(self):
        cleaned = super().clean()
        tenant = cleaned.get(self.tenant_field_name)
        if tenant is not None:
            setattr(self.instance, self.tenant_field_name, tenant)
        return cleaned

    def _get_validation_exclusions(self):
        exclude = super()._get_validation_exclusions()
        if getattr(self.instance, f"{self.tenant_field_name}_id", None) is not None:
            exclude.discard(self.tenant_field_name)
        return exclude


class AuditedAdminMixin:
    """Every write through this admin records an audit event (see ``audit_tenant``)."""

    def audit_tenant(self, obj: models.Model) -> Tenant | None:
        return tenant_of(obj)

    def save_model(self, request, obj, form, change):
        before = stored_snapshot(obj) if change else None
        audited_save(obj=obj, tenant=self.audit_tenant(obj), before=before)

    def delete_model(self, request, obj):
        audited_delete(obj=obj, tenant=self.audit_tenant(obj))

    def delete_queryset(self, request, queryset):
        # One by one, so each deletion goes through delete_model: its service or its audit.
        with transaction.atomic(using=queryset.db):
            for obj in queryset:
                self.delete_model(request, obj)

    def save_formset(self, request, form, formset, change):
        if not isinstance(formset, AuditedInlineFormSet):
            raise ImproperlyConfigured(
                f"{type(formset).__name__} is not an AuditedInlineFormSet: its writes would "
                "not be audited. Use StaffScopedInline for inlines."
            )
        formset.request = request
        formset.save()


class StaffScopedAdmin(_StaffPermissions, _TenantScoping, AuditedAdminMixin):
    """Mixin for the ModelAdmin of every tenant-bound model: ``(StaffScopedAdmin, ModelAdmin)``."""

    def run_on_each(self, request, queryset, *, verb: str, run, label=str) -> None:
        """An admin action's body: ``run(obj)`` for each selected object, in its tenant's scope.

        A service's refusal (``ValidationError``) skips that object and is reported by
        ``label(obj)``; the others go ahead. One message says how many were done.
        """
        done, refused = 0, []
        for obj in queryset.select_related("tenant"):
            try:
                with tenant_scope(obj.tenant_id):
                    run(obj)
            except ValidationError as error:
                refused.append(f"{label(obj)}: {' '.join(error.messages)}")
            else:
                done += 1
        if done:
            noun = self.model._meta.verbose_name
            self.message_user(request, f"{verb} {done} {noun}(s).", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.WARNING)

    def _needs_tenant_picker(self) -> bool:
        if self.tenant_field is None:
            return False
        try:
            field = self.model._meta.get_field(self.tenant_field)
        except FieldDoesNotExist:
            return False
        return field.is_relation and field.related_model is Tenant and not field.editable

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if obj is None and self._needs_tenant_picker() and self.tenant_field not in fields:
            fields.insert(0, self.tenant_field)
        return fields

    def get_readonly_fields(self, request, obj=None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and self._needs_tenant_picker() and self.tenant_field not in readonly:
            # Shown, never changed: an object does not move between tenants.
            readonly = (self.tenant_field, *readonly)
        return readonly

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None and self._needs_tenant_picker():
            if "fields" in kwargs:
                fields = kwargs.pop("fields")
            else:
                fields = flatten_fieldsets(self.get_fieldsets(request, obj))
            if fields is not None:
                # The model field is not editable; the declared picker below takes its place.
                fields = [name for name in fields if name != self.tenant_field]
            base_form = kwargs.pop("form", self.form)
            picker = BoundedModelChoiceField(
                queryset=tenants_visible_to(request.user).order_by("name"), label="Tenant"
            )
            kwargs["form"] = type(
                base_form.__name__,
                (TenantPickerFormMixin, base_form),
                {self.tenant_field: picker, "tenant_field_name": self.tenant_field},
            )
            kwargs["fields"] = fields
        return super().get_form(request, obj, change=change, **kwargs)

    def get_inline_instances(self, request, obj=None):
        inlines = super().get_inline_instances(request, obj)
        for inline in inlines:
            if not isinstance(inline, StaffScopedInline):
                raise ImproperlyConfigured(
                    f"{type(inline).__name__} must inherit StaffScopedInline (scoping, roles, "
                    "audited writes)."
                )
        return inlines


class BoundedInlineFormSet(BaseInlineFormSet):
    """The formset of every admin inline (``tests/test_admin_inlines.py`` checks): a post builds
    at most the stored rows plus ``new_rows_max`` forms."""

    #: New rows one post may add. A forged ``TOTAL_FORMS`` past the stored rows plus this is
    #: refused ("Please submit at most … forms") before any form is built: Django's own cap,
    #: 2,000 forms an inline, cost seconds of work a post, even on a read-only inline.
    new_rows_max = 100

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.is_bound:
            # The stored rows, not the posted INITIAL_FORMS (the client's to forge); the queryset
            # is the one the formset reads anyway (cached).
            stored = len(self.get_queryset()) if self.instance.pk else 0
            self.absolute_max = min(self.absolute_max, stored + self.new_rows_max)
            self.max_num = min(self.max_num, self.absolute_max)


class AuditedInlineFormSet(BoundedInlineFormSet):
    """Inline rows saved with an audit event each. Override the hooks to call a service.

    ``request`` is set by the parent admin's ``save_formset`` before saving.
    """

    request = None
    tenant_field: str | None = "tenant"

    @classmethod
    def get_default_prefix(cls):
        # Tenant-owned models' tenant key has no reverse accessor (related_name="+").
        return super().get_default_prefix() or cls.model._meta.model_name

    def audit_tenant(self, obj: models.Model) -> Tenant | None:
        return tenant_of(obj, self.tenant_field) or tenant_of(self.instance, None)

    def save_new(self, form, commit=True):
        if not commit:
            return super().save_new(form, commit=False)
        obj = super().save_new(form, commit=False)
        audited_save(obj=obj, tenant=self.audit_tenant(obj), before=None)
        form.save_m2m()
        return obj

    def save_existing(self, form, obj, commit=True):
        if not commit:
            return super().save_existing(form, obj, commit=False)
        before = stored_snapshot(obj)
        obj = super().save_existing(form, obj, commit=False)
        audited_save(obj=obj, tenant=self.audit_tenant(obj), before=before)
        form.save_m2m()
        return obj

    def delete_existing(self, obj, commit=True):
        if commit:
            audited_delete(obj=obj, tenant=self.audit_tenant(obj))


class StaffScopedInline(_StaffPermissions, _TenantScoping):
    """Mixin for inlines of tenant-bound models: ``(StaffScopedInline, admin.TabularInline)``."""

    formset = AuditedInlineFormSet

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        if not issubclass(formset, AuditedInlineFormSet):
            raise ImproperlyConfigured(
                f"{type(self).__name__}.formset must subclass AuditedInlineFormSet."
            )
        return formset


class StaffScopedTabularInline(StaffScopedInline, admin.TabularInline):
    pass


class StaffScopedStackedInline(StaffScopedInline, admin.StackedInline):
    pass
