"""Isolation proofs for every inventory route: tenant A's caller never reads, changes, deletes
or acts on tenant B's rows, and a foreign row is the same 404 as a missing one."""

from __future__ import annotations

import pytest

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
    Stage,
)
from tenants.models import AuditEvent
from tenants.scoping import tenant_scope
from tests.factories import make_gpu_device
from tests.inventory import estate
from tests.isolation import TenantIsolationTests, TenantSingletonIsolationTests


class TestSitesIsolation(TenantIsolationTests):
    resource = "sites"
    model = Site
    update_payload = {"name": "Renamed"}

    def make_object(self, tenant):
        return estate.make_site(tenant)

    def create_payload(self, tenant):
        number = estate.n()
        return {"code": f"new-{number}", "name": "New site", "kind": "edge", "country": "DE"}


class TestLinksIsolation(TenantIsolationTests):
    resource = "links"
    model = Link
    update_payload = {"bandwidth_mbps": 1}

    def make_object(self, tenant):
        return estate.make_link(tenant)

    def create_payload(self, tenant):
        site_a, site_b = estate.make_site(tenant), estate.make_site(tenant)
        return {"site_a": site_a.pk, "site_b": site_b.pk, "bandwidth_mbps": 100, "latency_ms": 3}


class TestCloudAccountsIsolation(TenantIsolationTests):
    resource = "cloud-accounts"
    model = CloudAccount
    update_payload = {"monthly_budget": "1.00"}

    def make_object(self, tenant):
        return estate.make_cloud_account(tenant)

    def create_payload(self, tenant):
        return {"provider": "gcp", "account_id": f"project-{estate.n()}", "monthly_budget": 10}


class TestComputeIsolation(TenantIsolationTests):
    resource = "compute"
    model = ComputeResource
    update_payload = {"status": "offline"}

    def make_object(self, tenant):
        return estate.make_gpu_node(tenant, cluster=estate.make_cluster(tenant))

    def create_payload(self, tenant):
        # Prerequisites of another model: the harness counts this model's rows in each tenant.
        site = estate.make_site(tenant)
        return {
            "hostname": f"new-node-{estate.n()}",
            "kind": "gpu_node",
            "site": site.pk,
            "gpu_count": 1,
            "gpu_uuids": [estate.gpu_uuid()],
        }


class TestGpusIsolation(TenantIsolationTests):
    resource = "gpus"
    model = GpuDevice
    update_payload = {"mig_profile": "1g.10gb"}

    def make_object(self, tenant):
        return make_gpu_device(tenant)

    def create_payload(self, tenant):
        node = estate.make_gpu_node(tenant)
        return {"compute": node.pk, "index": 3, "uuid": estate.gpu_uuid(), "model_name": "L40S"}


class TestAISystemsIsolation(TenantIsolationTests):
    resource = "ai-systems"
    model = AISystem
    update_payload = {"stage": Stage.PRODUCTION}
    detail_actions = ("transition",)

    def make_object(self, tenant):
        return estate.make_ai_system(tenant, stage=Stage.PILOT)

    def create_payload(self, tenant):
        return {"name": f"Assistant {estate.n()}", "risk_tier": "limited"}

    def test_foreign_transition_with_a_valid_body_changes_nothing(self, caller, objects, tenant_a):
        _own, foreign = objects
        before = self.snapshot(foreign)
        response = caller.client.post(
            self.url(tenant_a.slug, foreign.pk, "transition"), {"stage": Stage.PRODUCTION}
        )
        assert response.status_code == 404
        assert response.content == self.not_found_body(caller, tenant_a)
        assert self.snapshot(foreign) == before


class TestAISystemDatasetsIsolation(TenantIsolationTests):
    resource = "ai-system-datasets"
    model = AISystemDataset
    update_payload = {"usage": "evaluation"}

    def make_object(self, tenant):
        return estate.make_usage(tenant)

    def create_payload(self, tenant):
        ai_system, dataset = estate.make_ai_system(tenant), estate.make_dataset(tenant)
        return {"ai_system": ai_system.pk, "dataset": dataset.pk, "usage": "inference"}


class TestDeploymentsIsolation(TenantIsolationTests):
    resource = "deployments"
    model = Deployment
    update_payload = {"monitoring_enabled": True}

    def make_object(self, tenant):
        return estate.make_deployment(tenant, compute=estate.make_compute(tenant))

    def create_payload(self, tenant):
        ai_system = estate.make_ai_system(tenant)
        compute = estate.make_compute(tenant)
        return {
            "name": f"deploy-{estate.n()}",
            "ai_system": ai_system.pk,
            "compute": compute.pk,
            "model_version": "2.0",
        }


class TestDatasetsIsolation(TenantIsolationTests):
    resource = "datasets"
    model = Dataset
    update_payload = {"classification": "public"}

    def make_object(self, tenant):
        return estate.make_dataset(tenant, residency_country="FR")

    def create_payload(self, tenant):
        return {"name": f"Claims {estate.n()}", "personal_data": True, "residency_country": "DE"}


def _table_counts(tenant) -> dict:
    with tenant_scope(tenant.id):
        counts = {
            model._meta.label: model.objects.count()
            for model in (
                Site,
                Link,
                CloudAccount,
                ComputeResource,
                AISystem,
                AISystemDataset,
                Deployment,
                Dataset,
            )
        }
    counts["audit"] = AuditEvent.objects.filter(tenant=tenant).count()
    return counts


class TestInventoryIsolation(TenantSingletonIsolationTests):
    """``inventory/export`` and ``inventory/import`` never cross the tenant boundary."""

    resource = "inventory"

    def url(self, tenant_slug: str, what: str = "export") -> str:
        return f"/api/v1/tenants/{tenant_slug}/inventory/{what}"

    def state_of(self, tenant) -> dict:
        with tenant_scope(tenant.id):
            return {
                "counts": _table_counts(tenant),
                "sites": list(Site.objects.values()),
                "compute": list(ComputeResource.objects.values()),
            }

    @pytest.fixture
    def estates(self, tenant_a, tenant_b):
        for tenant in (tenant_a, tenant_b):
            site = estate.make_site(tenant, code=f"{tenant.slug}-dc1")
            shared = estate.make_site(tenant, code="shared-dc")
            cluster = estate.make_cluster(tenant, hostname=f"{tenant.slug}-cluster", site=site)
            estate.make_gpu_node(tenant, cluster=cluster, hostname=f"{tenant.slug}-node")
            estate.make_compute(tenant, hostname="shared-host", site=shared)
            system = estate.make_ai_system(tenant, name=f"{tenant.slug} assistant")
            estate.make_deployment(tenant, ai_system=system, name=f"{tenant.slug}-deploy")

    def test_export_of_a_never_includes_b_rows(self, caller, tenant_a, estates):
        document = caller.client.get(self.url(tenant_a.slug)).json()
        text = str(document)
        assert "borealis" not in text
        assert {row["hostname"] for row in document["compute"]} == {
            "acme-cluster",
            "acme-node",
            "shared-host",
        }
        assert [row["name"] for row in document["deployments"]] == ["acme-deploy"]

    def test_csv_export_of_a_never_includes_b_rows(self, caller, tenant_a, estates):
        response = caller.client.get(self.url(tenant_a.slug), {"format": "csv"})
        assert response.status_code == 200
        assert b"acme-node" in response.content
        assert b"borealis" not in response.content

    def test_foreign_export_and_csv_export_are_the_missing_tenant_404(
        self, caller, tenant_b, estates
    ):
        missing = caller.client.get(self.url("no-such-tenant"))
        assert missing.status_code == 404
        for params in ({}, {"format": "csv"}):
            foreign = caller.client.get(self.url(tenant_b.slug), params)
            assert foreign.status_code == 404
            assert foreign.content == missing.content

    def test_import_into_b_by_a_is_the_missing_tenant_404_and_writes_nothing(
        self, caller, tenant_b, estates
    ):
        before = self.state_of(tenant_b)
        document = {"sites": [{"code": "evil", "name": "Evil", "kind": "edge", "country": "GB"}]}
        foreign = caller.client.post(self.url(tenant_b.slug, "import"), document)
        missing = caller.client.post(self.url("no-such-tenant", "import"), document)
        assert foreign.status_code == missing.status_code == 404
        assert foreign.content == missing.content
        csv = caller.client.post(
            self.url(tenant_b.slug, "import"),
            data="hostname,kind\nevil-host,cpu_node\n",
            content_type="text/csv",
        )
        assert csv.status_code == 404
        assert self.state_of(tenant_b) == before

    def test_import_naming_b_keys_creates_a_rows_and_never_touches_b(
        self, caller, tenant_a, tenant_b, estates
    ):
        before_b = self.state_of(tenant_b)
        document = {
            "sites": [
                {"code": "borealis-dc1", "name": "Mine now", "kind": "edge", "country": "NO"},
                {"code": "shared-dc", "name": "Renamed in A", "kind": "edge", "country": "NO"},
            ],
            "compute": [
                {"hostname": "borealis-node", "kind": "cpu_node", "site": "borealis-dc1"},
                {"hostname": "shared-host", "kind": "cpu_node", "status": "offline"},
            ],
            "ai_systems": [{"name": "borealis assistant", "stage": "proposed"}],
            "deployments": [
                {
                    "name": "borealis-deploy",
                    "ai_system": "borealis assistant",
                    "model_version": "9",
                    "compute": "borealis-node",
                }
            ],
        }
        response = caller.client.post(self.url(tenant_a.slug, "import"), document)
        assert response.status_code == 200, response.content
        sections = response.json()["sections"]
        assert sections["sites"] == {"created": 1, "updated": 1, "unchanged": 0}
        assert sections["compute"] == {"created": 1, "updated": 1, "unchanged": 0}
        assert sections["deployments"]["created"] == 1
        assert self.state_of(tenant_b) == before_b
        with tenant_scope(tenant_a.id):
            node = ComputeResource.objects.select_related("site").get(hostname="borealis-node")
            assert node.tenant_id == tenant_a.id
            assert node.site.tenant_id == tenant_a.id
            assert Site.objects.get(code="shared-dc").name == "Renamed in A"
        with tenant_scope(tenant_b.id):
            assert Site.objects.get(code="shared-dc").name != "Renamed in A"

    def test_import_cannot_reference_b_objects_by_key_that_a_lacks(
        self, caller, tenant_a, tenant_b, estates
    ):
        before = self.state_of(tenant_a), self.state_of(tenant_b)
        document = {
            "compute": [{"hostname": "x-node", "kind": "gpu_node", "cluster": "borealis-cluster"}]
        }
        response = caller.client.post(self.url(tenant_a.slug, "import"), document)
        assert response.status_code == 400
        assert response.json()["error"]["fields"] == {
            "compute.0.cluster": ["Unknown compute resource 'borealis-cluster'."]
        }
        assert (self.state_of(tenant_a), self.state_of(tenant_b)) == before
