"""Generated fleets for the fleet-scan benchmark (``bench/jobs.py --fleet``), kept out of the app.

``generate_fleet(tenants=1000, systems=20)`` makes that many active tenants (slugs
``fleet-0001``…), each with ``systems`` AI systems, half as many datasets, one dataset use
and one deployment per system, and two compute nodes, all with bulk inserts. The estate is
a believable mix (a few per cent of every kind of gap, a rare prohibited practice), seeded,
so every run generates the same fleet. Idempotent: an existing fleet of that shape is reused.
"""

from __future__ import annotations

import datetime as dt
import random
import time

from django.db import transaction
from django.utils import timezone

from operations.inventory.models import (
    AISystem,
    AISystemDataset,
    ComputeKind,
    ComputeResource,
    Dataset,
    Deployment,
)
from tenants.models import ServicePlan, Tenant, TenantStatus
from tenants.scoping import tenant_scope

SLUG_PREFIX = "fleet-"
CHUNK = 100  # tenants per transaction
BATCH = 5000


def fleet_tenant_ids() -> list[int]:
    return list(
        Tenant.objects.filter(slug__startswith=SLUG_PREFIX, status=TenantStatus.ACTIVE)
        .order_by("id")
        .values_list("id", flat=True)
    )


def _fleet_exists(tenants: int, systems: int) -> bool:
    ids = fleet_tenant_ids()
    if len(ids) != tenants:
        return False
    with tenant_scope(*ids):
        return AISystem.objects.count() == tenants * systems


def generate_fleet(*, tenants: int = 1000, systems: int = 20, seed: int = 42) -> list[int]:
    """Make (or reuse) the fleet; returns its tenant ids."""
    if _fleet_exists(tenants, systems):
        return fleet_tenant_ids()
    if Tenant.objects.filter(slug__startswith=SLUG_PREFIX).exists():
        raise SystemExit(
            "a fleet of another shape exists in this database: run the bench with --fresh-db"
        )
    rng = random.Random(seed)
    started = time.perf_counter()
    now = timezone.now()
    rows = [
        Tenant(
            name=f"Fleet client {number:04d}",
            slug=f"{SLUG_PREFIX}{number:04d}",
            status=TenantStatus.ACTIVE,
            industry=rng.choice(["Finance", "Health", "Logistics", "Retail", "Public sector"]),
            region="eu-west",
            data_residency=rng.choice(["EU", "EU", "DE,FR", "UK", "EEA"]),
            status_changed_at=now,
        )
        for number in range(1, tenants + 1)
    ]
    created = Tenant.objects.bulk_create(rows, batch_size=BATCH)
    ServicePlan.objects.bulk_create(
        [ServicePlan(tenant=t, business_days=[0, 1, 2, 3, 4]) for t in created], batch_size=BATCH
    )
    ids = [tenant.id for tenant in created]
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        with transaction.atomic(), tenant_scope(*chunk):
            _estates(chunk, systems=systems, rng=rng, now=now)
    print(
        f"generated {tenants} tenants × {systems} AI systems in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return ids


def _chance(rng: random.Random, percent: float) -> bool:
    return rng.random() * 100 < percent


def _estates(tenant_ids: list[int], *, systems: int, rng: random.Random, now) -> None:
    today = now.date()
    compute = []
    for tenant_id in tenant_ids:
        for index in range(2):
            compute.append(
                ComputeResource(
                    tenant_id=tenant_id,
                    hostname=f"t{tenant_id}-gpu-{index + 1:02d}",
                    kind=ComputeKind.GPU_NODE,
                    status="retired" if index and _chance(rng, 20) else "active",
                    gpu_model="NVIDIA H100 80GB HBM3",
                    gpu_count=8,
                    gpu_memory_gb=80,
                    hourly_cost=32,
                )
            )
    ComputeResource.objects.bulk_create(compute, batch_size=BATCH)
    nodes: dict[int, list[ComputeResource]] = {}
    for node in compute:
        nodes.setdefault(node.tenant_id, []).append(node)

    datasets = []
    for tenant_id in tenant_ids:
        for index in range(max(1, systems // 2)):
            datasets.append(
                Dataset(
                    tenant_id=tenant_id,
                    name=f"Dataset {index + 1}",
                    classification=rng.choice(["internal", "confidential", "restricted"]),
                    personal_data=_chance(rng, 40),
                    owner="" if _chance(rng, 5) else "Data office",
                    retention_days=365,
                    residency_country=rng.choice(["DE", "FR", "IE", "NL", "US", "GB", ""]),
                    provenance="" if _chance(rng, 8) else "Core systems",
                    licence="" if _chance(rng, 8) else "Internal",
                    quality_score=rng.randint(60, 99),
                    last_validated_at=now - dt.timedelta(days=rng.randint(1, 500)),
                )
            )
    Dataset.objects.bulk_create(datasets, batch_size=BATCH)
    by_tenant: dict[int, list[Dataset]] = {}
    for dataset in datasets:
        by_tenant.setdefault(dataset.tenant_id, []).append(dataset)

    ai_systems = []
    for tenant_id in tenant_ids:
        for index in range(systems):
            stage = rng.choices(
                ["production", "pilot", "proposed", "retired"], weights=[50, 25, 15, 10]
            )[0]
            tier = rng.choices(
                ["high", "limited", "minimal", "unclassified", "prohibited"],
                weights=[20, 30, 41.5, 8, 0.5],
            )[0]
            provenance = rng.choice(["in_house", "in_house", "vendor", "open_weights"])
            high = tier == "high"
            ai_systems.append(
                AISystem(
                    tenant_id=tenant_id,
                    name=f"AI system {index + 1}",
                    purpose="" if _chance(rng, 5) else "Supports a business process.",
                    business_owner="" if _chance(rng, 8) else "Business owner",
                    technical_owner="" if _chance(rng, 8) else "ML platform",
                    stage=stage,
                    risk_tier=tier,
                    risk_classified_at=None
                    if tier == "unclassified"
                    else today - dt.timedelta(days=rng.randint(10, 700)),
                    provenance=provenance,
                    vendor="" if provenance == "in_house" else "Model vendor",
                    vendor_assessed_at=today - dt.timedelta(days=rng.randint(10, 600)),
                    model_name="model",
                    model_version="1.0",
                    personal_data=_chance(rng, 40),
                    human_oversight=high and not _chance(rng, 10),
                    human_overseer="Risk team" if high and not _chance(rng, 10) else "",
                    user_facing=_chance(rng, 30),
                    generative=_chance(rng, 30),
                    ai_disclosure=_chance(rng, 70),
                    annex_iii_area="employment" if _chance(rng, 10) else "",
                    technical_documentation_url="https://docs.example.com/ai"
                    if high and not _chance(rng, 15)
                    else "",
                    fria_required=high and _chance(rng, 30),
                    fria_completed_at=today - dt.timedelta(days=30) if _chance(rng, 70) else None,
                    eu_database_id="EUDB-1" if high and not _chance(rng, 20) else "",
                )
            )
    AISystem.objects.bulk_create(ai_systems, batch_size=BATCH)

    usage, deployments = [], []
    for system in ai_systems:
        tenant_datasets = by_tenant[system.tenant_id]
        usage.append(
            AISystemDataset(
                tenant_id=system.tenant_id,
                ai_system=system,
                dataset=rng.choice(tenant_datasets),
                usage=rng.choice(["training", "training", "evaluation", "inference"]),
            )
        )
        production = system.stage in ("production", "retired")
        deployments.append(
            Deployment(
                tenant_id=system.tenant_id,
                name=f"{system.name.lower().replace(' ', '-')}-{'prod' if production else 'stg'}",
                ai_system=system,
                model_version="1.0" if not _chance(rng, 10) else "0.9",
                compute=rng.choice(nodes[system.tenant_id]),
                environment="production" if production else "staging",
                monitoring_enabled=not _chance(rng, 15),
                logging_enabled=not _chance(rng, 10),
                log_retention_days=rng.choice([30, 90, 183, 365, 365]),
                runbook_url="" if _chance(rng, 20) else "https://runbooks.example.com/x",
                approved_by="" if _chance(rng, 10) else "Change board",
                deployed_at=now,
            )
        )
    AISystemDataset.objects.bulk_create(usage, batch_size=BATCH)
    Deployment.objects.bulk_create(deployments, batch_size=BATCH)


def reset_fleet_compliance() -> None:
    """Forget every scan, finding and score (the bench's own database only), so the next
    fleet scan starts cold: every finding new."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE compliance_score, compliance_finding, compliance_compliancescan")
