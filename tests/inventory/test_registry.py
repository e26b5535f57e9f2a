"""The registry is the one table of each inventory model's services and natural key: every
model has an entry, and the API, the admin and the bulk import write through it."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models

from operations.inventory import bulk
from operations.inventory.admin import ServiceAdmin, ServiceInlineFormSet
from operations.inventory.api import views
from operations.inventory.models import ComputeKind, ComputeResource, InventoryModel, Site
from operations.inventory.registry import INVENTORY_WRITES, inventory_writes
from tenants.models import AuditEvent
from tenants.scoping import tenant_scope
from tests.inventory.estate import make_cluster, make_gpu_node, make_site

INVENTORY_MODELS = {
    model
    for model in apps.get_app_config("inventory").get_models()
    if issubclass(model, InventoryModel)
}


def test_every_inventory_model_has_its_services():
    assert set(INVENTORY_WRITES) == INVENTORY_MODELS


@pytest.mark.parametrize("model", sorted(INVENTORY_MODELS, key=lambda m: m.__name__))
def test_the_natural_key_is_the_models_unique_per_tenant_key(model):
    unique = [c for c in model._meta.constraints if isinstance(c, models.UniqueConstraint)]
    key_fields = [name for name in unique[0].fields if name != "tenant"]
    instance = model(**{f"{model._meta.get_field(n).attname}": f"v-{n}" for n in key_fields})
    expected = tuple(f"v-{name}" for name in key_fields)
    key = inventory_writes(model).natural_key(instance)
    assert (key if isinstance(key, tuple) else (key,)) == expected


def test_the_api_admin_and_bulk_import_write_through_the_registry():
    viewsets = [
        cls
        for cls in vars(views).values()
        if isinstance(cls, type) and issubclass(cls, views.InventoryViewSet)
    ]
    assert {cls.model for cls in viewsets if cls is not views.InventoryViewSet} == (
        INVENTORY_MODELS
    )
    admins = {
        model
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, ServiceAdmin)
    }
    assert admins == INVENTORY_MODELS
    for model_admin in admin.site._registry.values():
        for inline in getattr(model_admin, "inlines", ()):
            if inline.model in INVENTORY_MODELS:
                assert issubclass(inline.formset, ServiceInlineFormSet), inline
    for section in bulk.SECTION_RULES.values():
        assert any(section.writes is writes for writes in INVENTORY_WRITES.values())


@pytest.mark.django_db
def test_the_registry_runs_the_models_rules_and_audited_services(tenant_a):
    cluster = make_cluster(tenant_a)
    make_gpu_node(tenant_a, cluster=cluster)
    site = make_site(tenant_a)
    with tenant_scope(tenant_a.id):
        with pytest.raises(ValidationError) as refused:
            inventory_writes(ComputeResource).run_checks(
                instance=cluster, fields={"kind": ComputeKind.CPU_NODE}
            )
        updated = inventory_writes(Site).update(tenant=tenant_a, instance=site, name="Renamed")
    assert "still has 1 node(s)" in refused.value.message_dict["kind"][0]
    assert updated.name == "Renamed"
    event = AuditEvent.objects.filter(action="update", object_id=str(site.pk)).get()
    assert event.changes["name"][1] == "Renamed"
