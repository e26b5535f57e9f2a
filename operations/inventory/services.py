"""Writes to the AI estate inventory. Every write is validated and audited in one transaction.

Rules that depend only on a row and the rows it points at (same tenant, a link joins two
sites, a node's cluster is a GPU cluster) live in the models' ``clean()``, so the API, the
bulk import and the admin all apply them. Rules about *changes* live here:

- an AI system moves only along ``STAGE_TRANSITIONS`` (``ai_system_transition``, and the same
  refusal when an update changes ``stage``); a new system may be registered at any stage,
  since an estate often has systems in production before it is inventoried;
- when ``risk_tier`` changes and no ``risk_classified_at`` is given, it becomes today (and is
  cleared when the tier goes back to unclassified);
- a retired AI system cannot gain a deployment, by creation or by moving one onto it;
- a GPU cluster that still has nodes cannot become another kind of resource;
- a stage change also passes every guard other contexts registered in
  ``stage_change_guards`` (readiness: the pilot → production gates), and dates
  ``stage_changed_at``.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from operations.inventory.models import (
    STAGE_TRANSITIONS,
    AISystem,
    AISystemDataset,
    CloudAccount,
    ComputeKind,
    ComputeResource,
    Dataset,
    Deployment,
    GpuDevice,
    Link,
    RiskTier,
    Site,
    Stage,
)
from tenants.audit import audit_record
from tenants.models import AuditAction
from tenants.owned import owned_object_create, owned_object_delete, owned_object_update

# --- Sites, links, cloud accounts, datasets: the generic audited writes ---------------------


def site_create(*, tenant, **fields) -> Site:
    return owned_object_create(tenant=tenant, model=Site, data=fields)


def site_update(*, tenant, site: Site, **fields) -> Site:
    return owned_object_update(tenant=tenant, instance=site, data=fields)


def site_delete(*, tenant, site: Site) -> None:
    owned_object_delete(tenant=tenant, instance=site)


def link_create(*, tenant, **fields) -> Link:
    """Connect two different sites of the tenant (A↔B and B↔A are the same link)."""
    return owned_object_create(tenant=tenant, model=Link, data=fields)


def link_update(*, tenant, link: Link, **fields) -> Link:
    return owned_object_update(tenant=tenant, instance=link, data=fields)


def link_delete(*, tenant, link: Link) -> None:
    owned_object_delete(tenant=tenant, instance=link)


def cloud_account_create(*, tenant, **fields) -> CloudAccount:
    return owned_object_create(tenant=tenant, model=CloudAccount, data=fields)


def cloud_account_update(*, tenant, cloud_account: CloudAccount, **fields) -> CloudAccount:
    return owned_object_update(tenant=tenant, instance=cloud_account, data=fields)


def cloud_account_delete(*, tenant, cloud_account: CloudAccount) -> None:
    owned_object_delete(tenant=tenant, instance=cloud_account)


def dataset_create(*, tenant, **fields) -> Dataset:
    return owned_object_create(tenant=tenant, model=Dataset, data=fields)


def dataset_update(*, tenant, dataset: Dataset, **fields) -> Dataset:
    return owned_object_update(tenant=tenant, instance=dataset, data=fields)


def dataset_delete(*, tenant, dataset: Dataset) -> None:
    owned_object_delete(tenant=tenant, instance=dataset)


# --- Compute ------------------------------------------------------------------------------------


def compute_create(*, tenant, **fields) -> ComputeResource:
    """Register a cluster, node or endpoint; a node's cluster must be a GPU cluster here."""
    return owned_object_create(tenant=tenant, model=ComputeResource, data=fields)


def compute_check_update(*, compute: ComputeResource, fields: dict) -> None:
    """Refuse turning a GPU cluster that still has nodes into another kind."""
    kind = fields.get("kind", compute.kind)
    if compute.kind == ComputeKind.GPU_CLUSTER and kind != ComputeKind.GPU_CLUSTER:
        nodes = ComputeResource.objects.filter(tenant_id=compute.tenant_id, cluster=compute)
        count = nodes.count()
        if count:
            raise ValidationError(
                {"kind": f"This GPU cluster still has {count} node(s); move them first."},
                code="cluster_has_nodes",
            )


def compute_update(*, tenant, compute: ComputeResource, **fields) -> ComputeResource:
    compute_check_update(compute=compute, fields=fields)
    return owned_object_update(tenant=tenant, instance=compute, data=fields)


def compute_delete(*, tenant, compute: ComputeResource) -> None:
    owned_object_delete(tenant=tenant, instance=compute)


# --- GPUs ----------------------------------------------------------------------------------------


def gpu_device_create(*, tenant, **fields) -> GpuDevice:
    """Record one GPU (or MIG instance) of a compute resource; telemetry learns them too."""
    return owned_object_create(tenant=tenant, model=GpuDevice, data=fields)


def gpu_device_update(*, tenant, gpu_device: GpuDevice, **fields) -> GpuDevice:
    return owned_object_update(tenant=tenant, instance=gpu_device, data=fields)


def gpu_device_delete(*, tenant, gpu_device: GpuDevice) -> None:
    """Forget a GPU; its telemetry series stay until retention removes them."""
    owned_object_delete(tenant=tenant, instance=gpu_device)


def gpu_devices_learn(
    *, tenant, labels_by_key: dict[tuple[int, int, str], dict[str, str]], now
) -> dict[tuple[int, int, str], int]:
    """Record the GPUs a scrape reports for the first time (each audited, by the ingest
    token's actor) from their dcgm-exporter labels; answer their ids by (compute, index, MIG
    instance). A GPU another request has just recorded is taken as it is."""
    ids = {}
    for (compute_id, index, mig), labels in sorted(labels_by_key.items()):
        fields = {
            "compute_id": compute_id,
            "index": index,
            "mig_instance": mig,
            "uuid": labels.get("UUID", ""),
            "mig_profile": labels.get("GPU_I_PROFILE", ""),
            "model_name": labels.get("modelName", ""),
            "first_seen_at": now,
            "last_seen_at": now,
        }
        try:
            with transaction.atomic():
                gpu = gpu_device_create(tenant=tenant, **fields)
        except (IntegrityError, ValidationError):
            # A concurrent scrape learned it first: the same position, the row it made.
            gpu = GpuDevice.objects.filter(
                tenant=tenant, compute_id=compute_id, index=index, mig_instance=mig
            ).first()
            if gpu is None:
                raise
        ids[(compute_id, index, mig)] = gpu.pk
    return ids


def gpu_devices_relabel(*, tenant, fleet, labels_by_key: dict) -> None:
    """A scrape reports another UUID at a known GPU's position (the GPU was swapped): record
    the new UUID and model (audited)."""
    for key, labels in sorted(labels_by_key.items()):
        gpu = GpuDevice.objects.get(tenant=tenant, pk=fleet.gpus[key][0])
        changes = {"uuid": labels["UUID"]}
        if labels.get("modelName"):
            changes["model_name"] = labels["modelName"]
        gpu_device_update(tenant=tenant, gpu_device=gpu, **changes)


#: ``last_seen_at`` moves at most this often: not a write per scrape per GPU.
GPU_SEEN_RESOLUTION = dt.timedelta(hours=1)


def gpu_devices_touch(*, tenant, fleet, keys, now) -> int:
    """Mark the GPUs at ``keys`` seen at ``now`` when their ``last_seen_at`` is over an hour
    old (one UPDATE, usually none); return how many moved. Bookkeeping, not audited."""
    stale_before = now - GPU_SEEN_RESOLUTION
    stale = [
        fleet.gpus[key][0]
        for key in keys
        if fleet.gpus[key][2] is None or fleet.gpus[key][2] < stale_before
    ]
    if not stale:
        return 0
    return GpuDevice.objects.filter(tenant=tenant, pk__in=stale).update(
        last_seen_at=now, first_seen_at=Coalesce("first_seen_at", Value(now))
    )


# --- AI systems ---------------------------------------------------------------------------------


class StageChangeRefused(ValidationError):
    """A registered guard refused a stage change. ``failing``: what stands in the way, as
    {key: message}; the API answers 409 with them, forms and imports show the message."""

    def __init__(self, message: str, *, failing: dict[str, str]):
        super().__init__({"stage": [ValidationError(message, code="stage_change_refused")]})
        self.refusal = message
        self.failing = failing


#: Guards other contexts register (in their AppConfig.ready) so that inventory need not import
#: them: ``guard(*, ai_system, from_stage, to_stage)`` raises ``StageChangeRefused`` to refuse.
stage_change_guards: list[Callable[..., None]] = []


def register_stage_change_guard(guard: Callable[..., None]) -> None:
    """Add ``guard`` once (``ready()`` may run more than once in tests)."""
    if guard not in stage_change_guards:
        stage_change_guards.append(guard)


def ai_system_check_stage_guards(
    *, ai_system: AISystem, to_stage: str, changes: dict | None = None
) -> None:
    """Run every registered guard on moving ``ai_system`` to ``to_stage``; the guards judge the
    system with the update's other ``changes`` applied (an update may fix what they check)."""
    candidate = ai_system
    if changes:
        candidate = copy.copy(ai_system)
        for name, value in changes.items():
            if name != "stage":
                setattr(candidate, name, value)
    for guard in stage_change_guards:
        guard(ai_system=candidate, from_stage=ai_system.stage, to_stage=to_stage)


def ai_system_check_stage_change(*, from_stage: str, to_stage: str) -> None:
    """The one refusal for an illegal lifecycle move, from the transition action or an update."""
    if to_stage not in Stage.values:
        raise ValidationError(
            {"stage": f"'{to_stage}' is not an AI system stage."}, code="invalid_choice"
        )
    allowed = STAGE_TRANSITIONS[from_stage]
    if to_stage not in allowed:
        allowed_text = ", ".join(allowed) or "none (final stage)"
        raise ValidationError(
            {
                "stage": f"An AI system cannot move from {from_stage} to {to_stage}; "
                f"allowed: {allowed_text}."
            },
            code="invalid_transition",
        )


def _with_risk_classification(fields: dict, *, current_tier: str | None) -> dict:
    tier = fields.get("risk_tier")
    if tier is None or tier == current_tier or "risk_classified_at" in fields:
        return fields
    classified_at = None if tier == RiskTier.UNCLASSIFIED else timezone.localdate()
    return {**fields, "risk_classified_at": classified_at}


def ai_system_create(*, tenant, **fields) -> AISystem:
    """Register an AI system, at any stage (it may already be in production)."""
    fields = _with_risk_classification(fields, current_tier=RiskTier.UNCLASSIFIED)
    return owned_object_create(tenant=tenant, model=AISystem, data=fields)


def ai_system_check_update(*, ai_system: AISystem, fields: dict) -> None:
    """Refuse a ``stage`` change that the lifecycle or a registered guard does not allow."""
    if "stage" in fields and fields["stage"] != ai_system.stage:
        ai_system_check_stage_change(from_stage=ai_system.stage, to_stage=fields["stage"])
        ai_system_check_stage_guards(ai_system=ai_system, to_stage=fields["stage"], changes=fields)


def ai_system_update(*, tenant, ai_system: AISystem, **fields) -> AISystem:
    """Change a system; a stage change obeys the lifecycle and the guards and is dated, a new
    risk tier is dated today."""
    ai_system_check_update(ai_system=ai_system, fields=fields)
    fields = _with_risk_classification(fields, current_tier=ai_system.risk_tier)
    if "stage" in fields and fields["stage"] != ai_system.stage:
        fields = {**fields, "stage_changed_at": timezone.now()}
    return owned_object_update(tenant=tenant, instance=ai_system, data=fields)


@transaction.atomic
def ai_system_transition(*, tenant, ai_system: AISystem, stage: str) -> AISystem:
    """Move a system along ``proposed → pilot → production → retired`` (``STAGE_TRANSITIONS``),
    if every registered guard lets it (``StageChangeRefused`` otherwise)."""
    ai_system = AISystem.objects.select_for_update().get(tenant=tenant, pk=ai_system.pk)
    if stage == ai_system.stage:
        raise ValidationError(
            {"stage": f"The AI system is already in {stage}."}, code="invalid_transition"
        )
    ai_system_check_stage_change(from_stage=ai_system.stage, to_stage=stage)
    ai_system_check_stage_guards(ai_system=ai_system, to_stage=stage)
    previous = ai_system.stage
    ai_system.stage = stage
    ai_system.stage_changed_at = timezone.now()
    ai_system.full_clean()
    ai_system.save(update_fields=["stage", "stage_changed_at", "updated_at"])
    audit_record(
        tenant=tenant,
        action=AuditAction.TRANSITION,
        instance=ai_system,
        changes={"stage": [previous, stage]},
    )
    return ai_system


def ai_system_delete(*, tenant, ai_system: AISystem) -> None:
    """Delete a system with no deployments; its dataset usage goes with it."""
    owned_object_delete(tenant=tenant, instance=ai_system)


def ai_system_dataset_create(*, tenant, **fields) -> AISystemDataset:
    """Record that an AI system uses a dataset (for training, evaluation or inference)."""
    return owned_object_create(tenant=tenant, model=AISystemDataset, data=fields)


def ai_system_dataset_update(
    *, tenant, ai_system_dataset: AISystemDataset, **fields
) -> AISystemDataset:
    return owned_object_update(tenant=tenant, instance=ai_system_dataset, data=fields)


def ai_system_dataset_delete(*, tenant, ai_system_dataset: AISystemDataset) -> None:
    owned_object_delete(tenant=tenant, instance=ai_system_dataset)


@transaction.atomic
def ai_system_set_datasets(
    *,
    tenant,
    ai_system: AISystem,
    usage: Iterable[tuple[Dataset, str]],
    current: Iterable[AISystemDataset] | None = None,
) -> bool:
    """Make ``usage`` the system's exact dataset usage; True when anything changed.

    ``current`` is the system's usage when the caller has already loaded it (bulk import).
    """
    if current is None:
        current = AISystemDataset.objects.filter(tenant=tenant, ai_system=ai_system)
    current = {(row.dataset_id, row.usage): row for row in current}
    wanted = {(dataset.pk, kind): dataset for dataset, kind in usage}
    for key, row in current.items():
        if key not in wanted:
            ai_system_dataset_delete(tenant=tenant, ai_system_dataset=row)
    for (dataset_id, kind), dataset in wanted.items():
        if (dataset_id, kind) not in current:
            ai_system_dataset_create(
                tenant=tenant, ai_system=ai_system, dataset=dataset, usage=kind
            )
    return set(current) != set(wanted)


# --- Deployments --------------------------------------------------------------------------------


def _refuse_retired(ai_system: AISystem | None) -> None:
    if ai_system is not None and ai_system.stage == Stage.RETIRED:
        raise ValidationError(
            {"ai_system": f"'{ai_system.name}' is retired; a retired system gains no deployments."},
            code="retired",
        )


def deployment_check_create(*, fields: dict) -> None:
    """Refuse a new deployment of a retired system."""
    _refuse_retired(fields.get("ai_system"))


def deployment_create(*, tenant, **fields) -> Deployment:
    """Deploy a version of an AI system (never a retired one) on the tenant's compute."""
    deployment_check_create(fields=fields)
    return owned_object_create(tenant=tenant, model=Deployment, data=fields)


def deployment_check_update(*, deployment: Deployment, fields: dict) -> None:
    """Refuse moving a deployment onto a retired system."""
    ai_system = fields.get("ai_system")
    if ai_system is not None and ai_system.pk != deployment.ai_system_id:
        _refuse_retired(ai_system)


def deployment_update(*, tenant, deployment: Deployment, **fields) -> Deployment:
    """Change a deployment; moving it onto a retired system is refused."""
    deployment_check_update(deployment=deployment, fields=fields)
    return owned_object_update(tenant=tenant, instance=deployment, data=fields)


def deployment_delete(*, tenant, deployment: Deployment) -> None:
    owned_object_delete(tenant=tenant, instance=deployment)
