from __future__ import annotations

import pytest

from tests.inventory.estate import gpu_uuid, make_cluster, make_deployment, make_gpu_node


@pytest.fixture
def estate(tenant_a, tenant_b):
    """Tenant A: a saturated cluster's node, an idle node and a deployment; tenant B: a node."""
    cluster = make_cluster(tenant_a, hostname="acme-gpu-sat")
    return {
        "node": make_gpu_node(
            tenant_a,
            cluster=cluster,
            hostname="acme-gpu-sat-01",
            gpu_count=4,
            gpu_uuids=[gpu_uuid() for _ in range(4)],
        ),
        "idle": make_gpu_node(tenant_a, hostname="acme-gpu-idle-01"),
        "deployment": make_deployment(tenant_a, name="fraud-scoring-prod"),
        "foreign": make_gpu_node(tenant_b, hostname="borealis-gpu-01"),
        "foreign_deployment": make_deployment(tenant_b, name="borealis-chat-prod"),
    }
