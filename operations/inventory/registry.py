"""The one table of how each inventory model is written: which service creates, updates and
deletes it, the change rules a form runs before saving, and its natural key (unique per
tenant). The API views, the admin and the bulk import all read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import models

from operations.inventory import services
from operations.inventory.models import (
    AISystem,
    AISystemDataset,
    CloudAccount,
    ComputeResource,
    Dataset,
    Deployment,
    GpuDevice,
    Link,
    Site,
)


@dataclass(frozen=True)
class InventoryWrites:
    """The services of one model: ``create_service(tenant=, **fields)``,
    ``update_service(tenant=, <instance_kwarg>=, **fields)``,
    ``delete_service(tenant=, <instance_kwarg>=)``; ``check_create(fields=)`` and
    ``check_update(<instance_kwarg>=, fields=)`` raise the refusals the services would."""

    create_service: Callable[..., models.Model]
    update_service: Callable[..., models.Model]
    delete_service: Callable[..., None]
    instance_kwarg: str
    natural_key: Callable[[models.Model], object]
    check_create: Callable[..., None] | None = None
    check_update: Callable[..., None] | None = None

    def create(self, *, tenant, **fields) -> models.Model:
        return self.create_service(tenant=tenant, **fields)

    def update(self, *, tenant, instance: models.Model, **fields) -> models.Model:
        return self.update_service(tenant=tenant, **{self.instance_kwarg: instance}, **fields)

    def delete(self, *, tenant, instance: models.Model) -> None:
        self.delete_service(tenant=tenant, **{self.instance_kwarg: instance})

    def run_checks(self, *, instance: models.Model | None, fields: dict) -> None:
        """The change rules for creating (``instance`` None) or changing ``instance``."""
        if instance is None:
            if self.check_create is not None:
                self.check_create(fields=fields)
        elif self.check_update is not None:
            self.check_update(**{self.instance_kwarg: instance}, fields=fields)


INVENTORY_WRITES: dict[type[models.Model], InventoryWrites] = {
    Site: InventoryWrites(
        create_service=services.site_create,
        update_service=services.site_update,
        delete_service=services.site_delete,
        instance_kwarg="site",
        natural_key=lambda site: site.code,
    ),
    Link: InventoryWrites(
        create_service=services.link_create,
        update_service=services.link_update,
        delete_service=services.link_delete,
        instance_kwarg="link",
        natural_key=lambda link: (link.site_a_id, link.site_b_id),
    ),
    CloudAccount: InventoryWrites(
        create_service=services.cloud_account_create,
        update_service=services.cloud_account_update,
        delete_service=services.cloud_account_delete,
        instance_kwarg="cloud_account",
        natural_key=lambda account: (account.provider, account.account_id),
    ),
    ComputeResource: InventoryWrites(
        create_service=services.compute_create,
        update_service=services.compute_update,
        delete_service=services.compute_delete,
        instance_kwarg="compute",
        natural_key=lambda compute: compute.hostname,
        check_update=services.compute_check_update,
    ),
    GpuDevice: InventoryWrites(
        create_service=services.gpu_device_create,
        update_service=services.gpu_device_update,
        delete_service=services.gpu_device_delete,
        instance_kwarg="gpu_device",
        natural_key=lambda gpu: (gpu.compute_id, gpu.index, gpu.mig_instance),
    ),
    AISystem: InventoryWrites(
        create_service=services.ai_system_create,
        update_service=services.ai_system_update,
        delete_service=services.ai_system_delete,
        instance_kwarg="ai_system",
        natural_key=lambda system: system.name,
        check_update=services.ai_system_check_update,
    ),
    Deployment: InventoryWrites(
        create_service=services.deployment_create,
        update_service=services.deployment_update,
        delete_service=services.deployment_delete,
        instance_kwarg="deployment",
        natural_key=lambda deployment: deployment.name,
        check_create=services.deployment_check_create,
        check_update=services.deployment_check_update,
    ),
    Dataset: InventoryWrites(
        create_service=services.dataset_create,
        update_service=services.dataset_update,
        delete_service=services.dataset_delete,
        instance_kwarg="dataset",
        natural_key=lambda dataset: dataset.name,
    ),
    AISystemDataset: InventoryWrites(
        create_service=services.ai_system_dataset_create,
        update_service=services.ai_system_dataset_update,
        delete_service=services.ai_system_dataset_delete,
        instance_kwarg="ai_system_dataset",
        natural_key=lambda usage: (usage.ai_system_id, usage.dataset_id, usage.usage),
    ),
}


def inventory_writes(model: type[models.Model]) -> InventoryWrites:
    """The services that write ``model`` (a KeyError names a model with none registered)."""
    return INVENTORY_WRITES[model]
