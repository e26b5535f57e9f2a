"""Builders for inventory rows in tests: each goes through the services, inside the tenant's
scope, with unique natural keys so several can live in one tenant."""

from __future__ import annotations

import itertools
import uuid

from operations.inventory import services
from operations.inventory.models import ComputeKind, Stage
from tenants.scoping import tenant_scope

_numbers = itertools.count(1)


def n() -> int:
    return next(_numbers)


def gpu_uuid() -> str:
    return f"GPU-{uuid.uuid4()}"


def make_site(tenant, **fields):
    number = n()
    values = {"code": f"site-{number}", "name": f"Site {number}", "kind": "on_prem_dc"}
    values.setdefault("country", "GB")
    with tenant_scope(tenant.id):
        return services.site_create(tenant=tenant, **{**values, **fields})


def make_link(tenant, site_a=None, site_b=None, **fields):
    site_a = site_a or make_site(tenant)
    site_b = site_b or make_site(tenant)
    values = {"site_a": site_a, "site_b": site_b, "bandwidth_mbps": 10000, "latency_ms": "1.50"}
    with tenant_scope(tenant.id):
        return services.link_create(tenant=tenant, **{**values, **fields})


def make_cloud_account(tenant, **fields):
    values = {"provider": "aws", "account_id": f"{100000000000 + n()}", "monthly_budget": 5000}
    with tenant_scope(tenant.id):
        return services.cloud_account_create(tenant=tenant, **{**values, **fields})


def make_compute(tenant, **fields):
    values = {"hostname": f"host-{n()}", "kind": ComputeKind.CPU_NODE}
    with tenant_scope(tenant.id):
        return services.compute_create(tenant=tenant, **{**values, **fields})


def make_cluster(tenant, **fields):
    return make_compute(tenant, **{"kind": ComputeKind.GPU_CLUSTER, **fields})


def make_gpu_node(tenant, cluster=None, **fields):
    values = {
        "kind": ComputeKind.GPU_NODE,
        "cluster": cluster,
        "gpu_model": "NVIDIA H100 80GB HBM3",
        "gpu_count": 2,
        "gpu_memory_gb": 80,
        "hourly_cost": "8.5000",
        "gpu_uuids": [gpu_uuid(), gpu_uuid()],
    }
    return make_compute(tenant, **{**values, **fields})


def make_ai_system(tenant, **fields):
    values = {"name": f"AI system {n()}", "stage": Stage.PILOT, "risk_tier": "minimal"}
    with tenant_scope(tenant.id):
        return services.ai_system_create(tenant=tenant, **{**values, **fields})


def make_dataset(tenant, **fields):
    values = {"name": f"Dataset {n()}", "classification": "internal"}
    with tenant_scope(tenant.id):
        return services.dataset_create(tenant=tenant, **{**values, **fields})


def make_usage(tenant, ai_system=None, dataset=None, usage="training"):
    ai_system = ai_system or make_ai_system(tenant)
    dataset = dataset or make_dataset(tenant)
    with tenant_scope(tenant.id):
        return services.ai_system_dataset_create(
            tenant=tenant, ai_system=ai_system, dataset=dataset, usage=usage
        )


def make_deployment(tenant, ai_system=None, compute=None, **fields):
    ai_system = ai_system or make_ai_system(tenant)
    values = {
        "name": f"deployment-{n()}",
        "ai_system": ai_system,
        "compute": compute,
        "model_version": "1.0.0",
    }
    with tenant_scope(tenant.id):
        return services.deployment_create(tenant=tenant, **{**values, **fields})
