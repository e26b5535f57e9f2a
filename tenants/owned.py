"""Generic, audited writes for tenant-owned models: apps with no special rules use these as
their services. The API's pieces for tenant-owned models are in ``tenants.api.owned``."""

from __future__ import annotations

from django.db import transaction

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
