"""The demo estate: believable, complete across stages and tiers, audited, and idempotent."""

from __future__ import annotations

import pytest

from operations.inventory import services
from operations.inventory.demo import PROFILES, demo_document, seed_inventory
from operations.inventory.models import (
    GPU_UUID,
    AISystem,
    AISystemDataset,
    CloudAccount,
    ComputeResource,
    Dataset,
    Deployment,
    Link,
    RiskTier,
    Site,
    SiteKind,
    Stage,
)
from tenants.models import AuditEvent
from tenants.scoping import tenant_scope
from tests.readiness.gate_builders import grant_override

pytestmark = pytest.mark.django_db

MODELS = (Site, Link, CloudAccount, ComputeResource, AISystem, AISystemDataset, Deployment, Dataset)


def counts(tenant) -> dict:
    with tenant_scope(tenant.id):
        rows = {model._meta.label: model.objects.count() for model in MODELS}
    rows["audit"] = AuditEvent.objects.filter(tenant=tenant).count()
    return rows


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_each_profile_gives_a_complete_estate(tenant_a, profile):
    seed_inventory(tenant_a, profile=profile)
    with tenant_scope(tenant_a.id):
        assert set(Site.objects.values_list("kind", flat=True)) == set(SiteKind.values)
        assert len(set(Site.objects.values_list("country", flat=True))) >= 2
        assert CloudAccount.objects.filter(monthly_budget__gt=0).count() == 2
        systems = AISystem.objects.all()
        assert set(systems.values_list("stage", flat=True)) == set(Stage.values)
        assert set(systems.values_list("risk_tier", flat=True)) == set(RiskTier.values)
        assert systems.filter(stage=Stage.PROPOSED, risk_tier=RiskTier.PROHIBITED).exists()
        assert systems.filter(stage=Stage.PRODUCTION, risk_tier=RiskTier.HIGH).exists()
        retired = systems.get(stage=Stage.RETIRED)
        assert Deployment.objects.filter(ai_system=retired).exists()

        production = Deployment.objects.filter(
            environment="production", ai_system__stage=Stage.PRODUCTION
        )
        assert production.filter(monitoring_enabled=True).exclude(runbook_url="").exists()
        assert production.filter(monitoring_enabled=False, runbook_url="").exists()

        datasets = Dataset.objects.all()
        assert datasets.filter(personal_data=True).exists()
        assert datasets.filter(personal_data=False).exists()
        assert len(set(datasets.values_list("classification", flat=True))) == 4
        assert AISystemDataset.objects.count() >= 8
        assert Link.objects.count() == 4


def test_the_documented_hostnames_exist(tenant_a):
    seed_inventory(tenant_a, profile="finance")
    with tenant_scope(tenant_a.id):
        hot = ComputeResource.objects.get(hostname="acme-gpu-hot", kind="gpu_cluster")
        nodes = ComputeResource.objects.filter(cluster=hot).order_by("hostname")
        assert list(nodes.values_list("hostname", flat=True)) == [
            f"acme-gpu-hot-0{i}" for i in range(1, 5)
        ]
        idle = ComputeResource.objects.get(hostname="acme-gpu-idle-01")
        assert idle.kind == "gpu_node"
        assert idle.gpu_model == "NVIDIA L40S"
        assert idle.hourly_cost > 0
        assert ComputeResource.objects.get(hostname="acme-llm-endpoint").kind == "managed_endpoint"
        gpu_nodes = ComputeResource.objects.filter(kind="gpu_node")
        uuids = [u for node in gpu_nodes for u in node.gpu_uuids]
        assert all(GPU_UUID.match(u) for u in uuids)
        assert len(uuids) == len(set(uuids)) == sum(node.gpu_count for node in gpu_nodes)
        models = set(gpu_nodes.values_list("gpu_model", flat=True))
        assert {"NVIDIA H100 80GB HBM3", "NVIDIA A100 80GB", "NVIDIA L40S"} <= models


def test_seeding_is_audited_and_idempotent(tenant_a):
    first = seed_inventory(tenant_a, profile="health")
    assert first["compute"]["created"] == 14
    after_first = counts(tenant_a)
    assert after_first["audit"] > sum(first[s]["created"] for s in first) - 1
    assert AuditEvent.objects.filter(
        tenant=tenant_a, object_type="inventory.AISystem", action="transition"
    ).exists()

    second = seed_inventory(tenant_a, profile="health")
    assert all(section["created"] == section["updated"] == 0 for section in second.values())
    assert counts(tenant_a) == after_first


def test_a_second_seed_keeps_what_people_changed(tenant_a):
    seed_inventory(tenant_a, profile="logistics")
    with tenant_scope(tenant_a.id):
        pilot = AISystem.objects.get(name="Driver drowsiness detection")
        grant_override(tenant_a, pilot)  # the demo pilot does not pass its readiness gates
        services.ai_system_transition(tenant=tenant_a, ai_system=pilot, stage=Stage.PRODUCTION)
        node = ComputeResource.objects.get(hostname="acme-cpu-02")
        services.compute_update(tenant=tenant_a, compute=node, status="retired")
    seed_inventory(tenant_a, profile="logistics")
    with tenant_scope(tenant_a.id):
        assert AISystem.objects.get(name="Driver drowsiness detection").stage == Stage.PRODUCTION
        assert ComputeResource.objects.get(hostname="acme-cpu-02").status == "retired"


def test_tenants_get_their_own_estates(tenant_a, tenant_b):
    seed_inventory(tenant_a, profile="finance")
    seed_inventory(tenant_b, profile="health")
    with tenant_scope(tenant_b.id):
        hostnames = set(ComputeResource.objects.values_list("hostname", flat=True))
        accounts = set(CloudAccount.objects.values_list("account_id", flat=True))
    assert "borealis-gpu-idle-01" in hostnames
    assert not any(name.startswith("acme-") for name in hostnames)
    assert "sub-borealis-clinical" in accounts
    with tenant_scope(tenant_a.id):
        assert not AISystem.objects.filter(name="ED triage assistant").exists()


def test_the_demo_estate_round_trips_through_export(admin_a, admin_b, tenant_a, tenant_b):
    seed_inventory(tenant_a, profile="finance")
    document = admin_a.client.get("/api/v1/tenants/acme/inventory/export").json()
    response = admin_b.client.post("/api/v1/tenants/borealis/inventory/import", document)
    assert response.status_code == 200, response.content
    assert admin_b.client.get("/api/v1/tenants/borealis/inventory/export").json() == document


def test_an_unknown_profile_is_refused(tenant_a):
    with pytest.raises(ValueError, match="finance, health, logistics"):
        demo_document(tenant_a, profile="mining")
    assert counts(tenant_a)["inventory.Site"] == 0


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_pilot_scope_is_one_pilot_system_on_its_own_compute(tenant_a, tenant_b, profile):
    seed_inventory(tenant_a, profile=profile, scope="pilot")
    with tenant_scope(tenant_a.id):
        system = AISystem.objects.get()
        assert system.stage == Stage.PILOT
        deployments = list(Deployment.objects.all())
        assert deployments
        assert {d.environment for d in deployments} == {"staging"}
        assert {d.ai_system_id for d in deployments} == {system.pk}
        assert 0 < ComputeResource.objects.count() < 6
        assert Site.objects.count() == 1
        assert not CloudAccount.objects.exists()
    with tenant_scope(tenant_b.id):
        assert not ComputeResource.objects.exists()


def test_the_kept_scope_has_nothing_prohibited_and_every_deployment_operated(tenant_a):
    seed_inventory(tenant_a, profile="health", scope="kept")
    with tenant_scope(tenant_a.id):
        systems = AISystem.objects.all()
        assert not systems.filter(risk_tier__in=[RiskTier.PROHIBITED, RiskTier.UNCLASSIFIED])
        assert not Deployment.objects.filter(ai_system__stage=Stage.RETIRED).exists()
        assert not Deployment.objects.filter(monitoring_enabled=False).exists()
        assert not Deployment.objects.filter(runbook_url="").exists()
        assert systems.filter(stage=Stage.PRODUCTION).count() >= 3


def test_an_unknown_scope_is_refused(tenant_a):
    with pytest.raises(ValueError, match="Unknown estate scope"):
        demo_document(tenant_a, profile="finance", scope="everything")
