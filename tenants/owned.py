"""Generic, audited writes for tenant-owned models, and the serializer pieces that keep foreign
keys inside the tenant. Apps with no special rules use these as their services."""

from __future__ import annotations

from django.db import models, transaction
from rest_framework import serializers

from msp.api.fields import PrimaryKeyRelatedField
from msp.api.serializers import StrictModelSerializer
from tenants.audit import (
    audit_changes,
    audit_record,
    audit_snapshot,
    audited_create,
    audited_update,
)
from tenants.models import AuditAction
from tenants.scoping import TenantOwnedModel


@transaction.atomic
def owned_object_create(
    *, tenant, model: type[TenantOwnedModel], data: dict, many_to_many: dict | None = None
) -> TenantOwnedModel:
    """Create a tenant-owned object in ``tenant`` (never from the data), validated and audited."""
    instance = audited_create(tenant=tenant, instance=model(tenant=tenant, **data))
    for name, values in (many_to_many or {}).items():
        getattr(instance, name).set(values)
    return instance


@transaction.atomic
def owned_object_update(*, tenant, instance: TenantOwnedModel, data: dict) -> TenantOwnedModel:
    assert instance.tenant_id == tenant.id, "instance is not in this tenant"
    return audited_update(tenant=tenant, instance=instance, data=data)


@transaction.atomic
def owned_object_delete(*, tenant, instance: TenantOwnedModel) -> None:
    assert instance.tenant_id == tenant.id, "instance is not in this tenant"
    audit_record(
        tenant=tenant,
        action=AuditAction.DELETE,
        instance=instance,
        changes=audit_changes(audit_snapshot(instance), {}),
    )
    instance.delete()


class TenantScopedRelatedField(PrimaryKeyRelatedField):
    """A foreign key to another tenant-owned model, resolved inside the request's tenant.

    The queryset is built when the field validates (inside the scope), never at import time,
    so an id from another tenant is simply "does not exist".
    """

    def __init__(self, model: type[models.Model], **kwargs):
        self.related_model = model
        super().__init__(**kwargs)

    def get_queryset(self):
        tenant = self.context["tenant"]
        return self.related_model.objects.filter(tenant=tenant)

    def use_pk_only_optimization(self):
        return True


class TenantScopedSlugRelatedField(serializers.SlugRelatedField):
    """A foreign key to another tenant-owned model by one of its unique fields (a site's
    ``code``), resolved inside the request's tenant like ``TenantScopedRelatedField``."""

    def __init__(self, model: type[models.Model], **kwargs):
        self.related_model = model
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.related_model.objects.filter(tenant=self.context["tenant"])


class TenantOwnedSerializer(StrictModelSerializer):
    """Model serializer for tenant-owned models: the tenant is never a field."""

    def build_relational_field(self, field_name, relation_info):
        model = relation_info.related_model
        if issubclass(model, TenantOwnedModel):
            kwargs = {"model": model}
            model_field = relation_info.model_field
            if relation_info.to_many:
                kwargs.update(many=True, required=False)
            elif model_field is not None and (model_field.null or model_field.blank):
                kwargs.update(required=False, allow_null=True)
            return TenantScopedRelatedField, kwargs
        return super().build_relational_field(field_name, relation_info)


def split_many_to_many(model: type[models.Model], data: dict) -> tuple[dict, dict]:
    """(plain fields, many-to-many fields) of validated serializer data."""
    m2m_names = {field.name for field in model._meta.many_to_many}
    plain = {key: value for key, value in data.items() if key not in m2m_names}
    return plain, {key: value for key, value in data.items() if key in m2m_names}
