"""The API's pieces for tenant-owned models: the serializer base, whose foreign keys to other
tenant-owned models resolve only inside the request's tenant, and the split of validated data
that the generic writes in ``tenants.owned`` take."""

from __future__ import annotations

from django.db import models
from rest_framework import serializers

from msp.api.fields import PrimaryKeyRelatedField
from msp.api.serializers import StrictModelSerializer
from tenants.scoping import TenantOwnedModel


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
