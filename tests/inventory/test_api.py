"""Inventory API: CRUD through audited services, filters, validation rules and query budgets."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from operations.inventory import services
from operations.inventory.models import (
    AISystem,
    AISystemDataset,
    CloudAccount,
    ComputeResource,
    Dataset,
    Deployment,
    Link,
    Site,
    Stage,
)
from tenants.models import AuditEvent, TenantRole
from tenants.scoping import tenant_scope
from tests.conftest import Actor
from tests.factories import make_member, make_token
from tests.inventory import estate
from tests.readiness.gate_builders import ready_pilot

pytestmark = pytest.mark.django_db

API = "/api/v1/tenants/acme"


def error_fields(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == response.status_code
    return body["error"].get("fields", {})


def count_rows(tenant, model) -> int:
    with tenant_scope(tenant.id):
        return model.objects.count()


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# --- CRUD ---------------------------------------------------------------------------------------


def _site_payload(tenant):
    return {"code": "lon-dc1", "name": "London DC1", "kind": "on_prem_dc", "country": "GB"}


def _link_payload(tenant):
    a, b = estate.make_site(tenant), estate.make_site(tenant)
    return {"site_a": a.pk, "site_b": b.pk, "bandwidth_mbps": 40000, "latency_ms": "0.80"}


def _cloud_account_payload(tenant):
    return {"provider": "azure", "account_id": "sub-123", "monthly_budget": "25000.00"}


def _compute_payload(tenant):
    cluster = estate.make_cluster(tenant)
    return {
        "hostname": "gpu-01",
        "kind": "gpu_node",
        "cluster": cluster.pk,
        "gpu_model": "NVIDIA A100 80GB",
        "gpu_count": 1,
        "gpu_memory_gb": 80,
        "hourly_cost": "3.2000",
        "gpu_uuids": [estate.gpu_uuid()],
    }


def _ai_system_payload(tenant):
    return {"name": "Claims triage", "stage": "proposed", "risk_tier": "high"}


def _usage_payload(tenant):
    system, dataset = estate.make_ai_system(tenant), estate.make_dataset(tenant)
    return {"ai_system": system.pk, "dataset": dataset.pk, "usage": "evaluation"}


def _deployment_payload(tenant):
    system = estate.make_ai_system(tenant, stage=Stage.PRODUCTION)
    return {
        "name": "triage-prod",
        "ai_system": system.pk,
        "model_version": "3.1",
        "endpoint": "https://triage.example.com/v1",
        "monitoring_enabled": True,
    }


def _dataset_payload(tenant):
    return {"name": "Claims 2025", "personal_data": True, "residency_country": "IE"}


CRUD = [
    ("sites", Site, _site_payload, {"name": "London DC One"}),
    ("links", Link, _link_payload, {"redundancy": "active_active"}),
    ("cloud-accounts", CloudAccount, _cloud_account_payload, {"monthly_budget": "30000.00"}),
    ("compute", ComputeResource, _compute_payload, {"status": "maintenance"}),
    ("ai-systems", AISystem, _ai_system_payload, {"purpose": "Route claims to handlers"}),
    ("ai-system-datasets", AISystemDataset, _usage_payload, {"usage": "inference"}),
    (
        "deployments",
        Deployment,
        _deployment_payload,
        {"runbook_url": "https://wiki.example.com/rb"},
    ),
    ("datasets", Dataset, _dataset_payload, {"quality_score": 87}),
]


@pytest.mark.parametrize(
    ("resource", "model", "payload", "change"), CRUD, ids=[row[0] for row in CRUD]
)
def test_crud_is_audited_and_stays_in_the_tenant(
    admin_a, tenant_a, tenant_b, resource, model, payload, change
):
    url = f"{API}/{resource}/"
    created = admin_a.client.post(url, payload(tenant_a))
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    with tenant_scope(tenant_a.id):
        assert model.objects.filter(pk=pk, tenant=tenant_a).exists()

    assert admin_a.client.get(f"{url}{pk}/").json()["id"] == pk
    assert pk in ids(admin_a.client.get(url))

    changed = admin_a.client.patch(f"{url}{pk}", change)  # no trailing slash works too
    assert changed.status_code == 200, changed.content
    field, value = next(iter(change.items()))
    assert changed.json()[field] == value

    assert admin_a.client.delete(f"{url}{pk}/").status_code == 204
    assert admin_a.client.get(f"{url}{pk}/").status_code == 404
    events = AuditEvent.objects.filter(
        tenant=tenant_a, object_type=model._meta.label, object_id=str(pk)
    )
    assert sorted(events.values_list("action", flat=True)) == ["create", "delete", "update"]
    assert count_rows(tenant_b, model) == 0


def test_viewers_read_but_cannot_write(tenant_a):
    viewer = make_member(tenant_a, TenantRole.VIEWER)
    actor = Actor(viewer, make_token(viewer))
    estate.make_site(tenant_a)
    assert actor.client.get(f"{API}/sites/").json()["count"] == 1
    refused = actor.client.post(f"{API}/sites/", _site_payload(tenant_a))
    assert refused.status_code == 403
    assert count_rows(tenant_a, Site) == 1


def test_import_needs_write(admin_a, tenant_a):
    read_only_token = Actor(admin_a.user, make_token(admin_a.user, scopes=("read",)))
    viewer = make_member(tenant_a, TenantRole.VIEWER)
    document = {"sites": [_site_payload(tenant_a)]}
    for actor in (read_only_token, Actor(viewer, make_token(viewer))):
        response = actor.client.post(f"{API}/inventory/import", document)
        assert response.status_code == 403
        assert actor.client.get(f"{API}/inventory/export").status_code == 200
    assert count_rows(tenant_a, Site) == 0


def test_read_only_names_come_with_each_row(admin_a, tenant_a):
    site = estate.make_site(tenant_a, code="fra-colo")
    account = estate.make_cloud_account(tenant_a, provider="gcp", account_id="proj-1")
    cluster = estate.make_cluster(tenant_a, hostname="fra-cluster", site=site)
    node = estate.make_gpu_node(tenant_a, cluster=cluster, site=site, cloud_account=account)
    system = estate.make_ai_system(tenant_a, name="Fraud scoring")
    dataset = estate.make_dataset(tenant_a, name="Card transactions")
    estate.make_usage(tenant_a, ai_system=system, dataset=dataset, usage="training")
    estate.make_deployment(tenant_a, ai_system=system, compute=node, name="fraud-prod")

    row = admin_a.client.get(f"{API}/compute/{node.pk}/").json()
    assert (row["site_code"], row["cluster_hostname"], row["cloud_account_key"]) == (
        "fra-colo",
        "fra-cluster",
        "gcp:proj-1",
    )
    assert admin_a.client.get(f"{API}/compute/{cluster.pk}/").json()["node_count"] == 1
    system_row = admin_a.client.get(f"{API}/ai-systems/{system.pk}/").json()
    assert system_row["deployment_count"] == 1
    assert [(d["dataset_name"], d["usage"]) for d in system_row["datasets"]] == [
        ("Card transactions", "training")
    ]
    deployment = admin_a.client.get(f"{API}/deployments/").json()["results"][0]
    assert (deployment["ai_system_name"], deployment["compute_hostname"]) == (
        "Fraud scoring",
        node.hostname,
    )


# --- Query budgets ------------------------------------------------------------------------------


def _full_compute_row(tenant):
    site = estate.make_site(tenant)
    account = estate.make_cloud_account(tenant)
    cluster = estate.make_cluster(tenant, site=site)
    return estate.make_gpu_node(tenant, cluster=cluster, site=site, cloud_account=account)


def _full_ai_system_row(tenant):
    system = estate.make_ai_system(tenant)
    estate.make_usage(tenant, ai_system=system)
    estate.make_usage(tenant, ai_system=system, usage="evaluation")
    estate.make_deployment(tenant, ai_system=system)
    return system


def _full_deployment_row(tenant):
    return estate.make_deployment(tenant, compute=estate.make_compute(tenant))


LISTS = [
    ("sites", estate.make_site),
    ("links", estate.make_link),
    ("cloud-accounts", estate.make_cloud_account),
    ("compute", _full_compute_row),
    ("ai-systems", _full_ai_system_row),
    ("ai-system-datasets", estate.make_usage),
    ("deployments", _full_deployment_row),
    ("datasets", estate.make_dataset),
]


@pytest.mark.parametrize(("resource", "make_row"), LISTS, ids=[row[0] for row in LISTS])
def test_a_list_runs_the_same_queries_for_one_row_and_for_many(
    admin_a, tenant_a, resource, make_row
):
    url = f"{API}/{resource}/"
    make_row(tenant_a)
    admin_a.client.get(url)  # warm any per-process caches
    with CaptureQueriesContext(connection) as one:
        first = admin_a.client.get(url, {"page_size": 500})
    for _ in range(49):
        make_row(tenant_a)
    with CaptureQueriesContext(connection) as many:
        second = admin_a.client.get(url, {"page_size": 500})
    assert len(first.json()["results"]) < len(second.json()["results"])
    assert second.json()["count"] >= 50
    assert len(many) == len(one), [q["sql"] for q in many.captured_queries]


def test_export_runs_the_same_queries_for_a_small_and_a_large_estate(admin_a, tenant_a):
    url = f"{API}/inventory/export"

    def grow():
        _full_compute_row(tenant_a)
        _full_ai_system_row(tenant_a)
        estate.make_link(tenant_a)

    grow()
    admin_a.client.get(url)
    with CaptureQueriesContext(connection) as small:
        admin_a.client.get(url)
    for _ in range(10):
        grow()
    with CaptureQueriesContext(connection) as large:
        document = admin_a.client.get(url).json()
    assert len(document["ai_systems"]) == 11
    assert len(large) == len(small)


# --- Filters, search, ordering -------------------------------------------------------------------


class TestFilters:
    @pytest.fixture
    def fleet(self, tenant_a, tenant_b):
        lon = estate.make_site(tenant_a, code="lon", country="GB", kind="on_prem_dc")
        fra = estate.make_site(tenant_a, code="fra", country="DE", kind="cloud_region")
        aws = estate.make_cloud_account(tenant_a, provider="aws", account_id="1")
        cluster = estate.make_cluster(tenant_a, hostname="lon-cluster", site=lon)
        h100 = estate.make_gpu_node(
            tenant_a, cluster=cluster, site=lon, hostname="lon-h100", gpu_model="NVIDIA H100"
        )
        l40s = estate.make_gpu_node(
            tenant_a,
            site=fra,
            hostname="fra-l40s",
            gpu_model="NVIDIA L40S",
            cloud_account=aws,
            status="maintenance",
        )
        cpu = estate.make_compute(tenant_a, hostname="fra-cpu", site=fra)
        link = estate.make_link(tenant_a, site_a=lon, site_b=fra)
        scoring = estate.make_ai_system(
            tenant_a,
            name="Credit scoring",
            stage=Stage.PRODUCTION,
            risk_tier="high",
            provenance="in_house",
            personal_data=True,
        )
        chatbot = estate.make_ai_system(
            tenant_a,
            name="Help chatbot",
            stage=Stage.PILOT,
            risk_tier="limited",
            provenance="vendor",
        )
        forecast = estate.make_ai_system(
            tenant_a, name="Demand forecast", stage=Stage.PROPOSED, risk_tier="minimal"
        )
        loans = estate.make_dataset(
            tenant_a,
            name="Loan book",
            classification="restricted",
            personal_data=True,
            residency_country="GB",
        )
        weather = estate.make_dataset(tenant_a, name="Weather", classification="public")
        estate.make_usage(tenant_a, ai_system=scoring, dataset=loans)
        prod = estate.make_deployment(
            tenant_a,
            ai_system=scoring,
            compute=h100,
            name="scoring-prod",
            monitoring_enabled=True,
            runbook_url="https://runbooks.example.com/scoring",
        )
        staging = estate.make_deployment(
            tenant_a, ai_system=chatbot, compute=l40s, name="chat-stg", environment="staging"
        )
        # Tenant B has look-alikes that must never match.
        estate.make_site(tenant_b, code="lon", country="GB")
        estate.make_ai_system(tenant_b, name="Credit scoring", risk_tier="high")
        return locals()

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ({"kind": "gpu_node"}, ["fra-l40s", "lon-h100"]),
            ({"kind__in": "gpu_cluster,cpu_node"}, ["fra-cpu", "lon-cluster"]),
            ({"status": "maintenance"}, ["fra-l40s"]),
            ({"gpu_model": "nvidia h100"}, ["lon-h100"]),
            ({"gpu_model__icontains": "l40"}, ["fra-l40s"]),
            ({"site_code": "fra"}, ["fra-cpu", "fra-l40s"]),
            ({"cluster_hostname": "lon-cluster"}, ["lon-h100"]),
            ({"provider": "aws"}, ["fra-l40s"]),
            ({"country": "GB"}, ["lon-cluster", "lon-h100"]),
            ({"has_gpus": "true"}, ["fra-l40s", "lon-h100"]),
            ({"search": "h100"}, ["lon-h100"]),
        ],
    )
    def test_compute(self, admin_a, fleet, query, expected):
        rows = admin_a.client.get(f"{API}/compute/", query).json()["results"]
        assert [row["hostname"] for row in rows] == expected

    def test_compute_by_site_and_cluster_id(self, admin_a, fleet):
        by_site = admin_a.client.get(f"{API}/compute/", {"site": fleet["lon"].pk})
        assert set(ids(by_site)) == {fleet["cluster"].pk, fleet["h100"].pk}
        by_cluster = admin_a.client.get(f"{API}/compute/", {"cluster": fleet["cluster"].pk})
        assert ids(by_cluster) == [fleet["h100"].pk]

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ({"stage": "production"}, ["Credit scoring"]),
            ({"stage__in": "pilot,proposed"}, ["Demand forecast", "Help chatbot"]),
            ({"risk_tier": "limited"}, ["Help chatbot"]),
            ({"risk_tier__in": "high,minimal"}, ["Credit scoring", "Demand forecast"]),
            ({"provenance": "vendor"}, ["Help chatbot"]),
            ({"personal_data": "true"}, ["Credit scoring"]),
            ({"search": "chat"}, ["Help chatbot"]),
            ({"ordering": "-name"}, ["Help chatbot", "Demand forecast", "Credit scoring"]),
        ],
    )
    def test_ai_systems(self, admin_a, fleet, query, expected):
        rows = admin_a.client.get(f"{API}/ai-systems/", query).json()["results"]
        assert [row["name"] for row in rows] == expected

    def test_ai_systems_by_dataset(self, admin_a, fleet):
        response = admin_a.client.get(f"{API}/ai-systems/", {"dataset": fleet["loans"].pk})
        assert ids(response) == [fleet["scoring"].pk]

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ({"environment": "staging"}, ["chat-stg"]),
            ({"monitoring_enabled": "false"}, ["chat-stg"]),
            ({"has_runbook": "true"}, ["scoring-prod"]),
            ({"has_runbook": "false"}, ["chat-stg"]),
            ({"stage": "production"}, ["scoring-prod"]),
            ({"risk_tier": "limited"}, ["chat-stg"]),
            ({"compute_hostname": "lon-h100"}, ["scoring-prod"]),
            ({"ai_system_name": "Help chatbot"}, ["chat-stg"]),
        ],
    )
    def test_deployments(self, admin_a, fleet, query, expected):
        rows = admin_a.client.get(f"{API}/deployments/", query).json()["results"]
        assert [row["name"] for row in rows] == expected

    def test_deployments_by_site(self, admin_a, fleet):
        response = admin_a.client.get(f"{API}/deployments/", {"site": fleet["fra"].pk})
        assert ids(response) == [fleet["staging"].pk]

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ({"classification": "restricted"}, ["Loan book"]),
            ({"personal_data": "false"}, ["Weather"]),
            ({"residency_country": "GB"}, ["Loan book"]),
            ({"classification__in": "public,internal"}, ["Weather"]),
        ],
    )
    def test_datasets(self, admin_a, fleet, query, expected):
        rows = admin_a.client.get(f"{API}/datasets/", query).json()["results"]
        assert [row["name"] for row in rows] == expected

    def test_datasets_used_by_a_system(self, admin_a, fleet):
        response = admin_a.client.get(f"{API}/datasets/", {"used_by": fleet["scoring"].pk})
        assert ids(response) == [fleet["loans"].pk]

    def test_sites_links_and_accounts(self, admin_a, fleet):
        sites = admin_a.client.get(f"{API}/sites/", {"kind": "cloud_region"}).json()["results"]
        assert [row["code"] for row in sites] == ["fra"]
        by_country = admin_a.client.get(f"{API}/sites/", {"country": "GB"}).json()["results"]
        assert [row["code"] for row in by_country] == ["lon"]
        links = admin_a.client.get(f"{API}/links/", {"site": fleet["fra"].pk})
        assert ids(links) == [fleet["link"].pk]
        assert ids(admin_a.client.get(f"{API}/links/", {"site_code": "nowhere"})) == []
        accounts = admin_a.client.get(f"{API}/cloud-accounts/", {"provider": "aws"})
        assert ids(accounts) == [fleet["aws"].pk]
        assert ids(admin_a.client.get(f"{API}/cloud-accounts/", {"provider": "gcp"})) == []

    def test_a_foreign_id_in_a_filter_matches_nothing(self, admin_a, fleet, tenant_b):
        foreign = estate.make_site(tenant_b)
        estate.make_compute(tenant_b, site=foreign)
        assert ids(admin_a.client.get(f"{API}/compute/", {"site": foreign.pk})) == []

    def test_ordering_by_cost(self, admin_a, tenant_a):
        estate.make_gpu_node(tenant_a, hostname="cheap", hourly_cost="1.0000")
        estate.make_gpu_node(tenant_a, hostname="dear", hourly_cost="9.0000")
        rows = admin_a.client.get(f"{API}/compute/", {"ordering": "-hourly_cost"}).json()
        assert [row["hostname"] for row in rows["results"]] == ["dear", "cheap"]


# --- Validation ---------------------------------------------------------------------------------


def _foreign_link(tenant_a, tenant_b):
    own = estate.make_site(tenant_a)
    foreign = estate.make_site(tenant_b)
    payload = {"site_a": own.pk, "site_b": foreign.pk, "bandwidth_mbps": 1, "latency_ms": 1}
    return "links", Link, payload, "site_b"


def _foreign_cluster(tenant_a, tenant_b):
    foreign = estate.make_cluster(tenant_b)
    return (
        "compute",
        ComputeResource,
        {"hostname": "n", "kind": "gpu_node", "cluster": foreign.pk},
        ("cluster"),
    )


def _foreign_site(tenant_a, tenant_b):
    foreign = estate.make_site(tenant_b)
    return (
        "compute",
        ComputeResource,
        {"hostname": "n", "kind": "cpu_node", "site": foreign.pk},
        ("site"),
    )


def _foreign_account(tenant_a, tenant_b):
    foreign = estate.make_cloud_account(tenant_b)
    payload = {"hostname": "n", "kind": "managed_endpoint", "cloud_account": foreign.pk}
    return "compute", ComputeResource, payload, "cloud_account"


def _foreign_system(tenant_a, tenant_b):
    foreign = estate.make_ai_system(tenant_b)
    payload = {"name": "d", "ai_system": foreign.pk, "model_version": "1"}
    return "deployments", Deployment, payload, "ai_system"


def _foreign_compute(tenant_a, tenant_b):
    own = estate.make_ai_system(tenant_a)
    foreign = estate.make_compute(tenant_b)
    payload = {"name": "d", "ai_system": own.pk, "compute": foreign.pk, "model_version": "1"}
    return "deployments", Deployment, payload, "compute"


def _foreign_dataset(tenant_a, tenant_b):
    own = estate.make_ai_system(tenant_a)
    foreign = estate.make_dataset(tenant_b)
    payload = {"ai_system": own.pk, "dataset": foreign.pk}
    return "ai-system-datasets", AISystemDataset, payload, "dataset"


FOREIGN = [
    _foreign_link,
    _foreign_cluster,
    _foreign_site,
    _foreign_account,
    _foreign_system,
    _foreign_compute,
    _foreign_dataset,
]


@pytest.mark.parametrize("case", FOREIGN, ids=[case.__name__[1:] for case in FOREIGN])
def test_a_foreign_id_does_not_exist_and_nothing_is_written(admin_a, tenant_a, tenant_b, case):
    resource, model, payload, field = case(tenant_a, tenant_b)
    before = count_rows(tenant_a, model), count_rows(tenant_b, model)
    audit_before = AuditEvent.objects.count()
    response = admin_a.client.post(f"{API}/{resource}/", payload)
    assert response.status_code == 400
    assert "does not exist" in error_fields(response)[field][0]
    assert (count_rows(tenant_a, model), count_rows(tenant_b, model)) == before
    assert AuditEvent.objects.count() == audit_before


def test_a_foreign_id_in_an_update_does_not_exist(admin_a, tenant_a, tenant_b):
    deployment = estate.make_deployment(tenant_a)
    foreign = estate.make_ai_system(tenant_b)
    response = admin_a.client.patch(
        f"{API}/deployments/{deployment.pk}/", {"ai_system": foreign.pk}
    )
    assert response.status_code == 400
    assert "does not exist" in error_fields(response)["ai_system"][0]
    with tenant_scope(tenant_a.id):
        assert Deployment.objects.get(pk=deployment.pk).ai_system_id == deployment.ai_system_id


class TestLinks:
    def test_a_link_joins_two_different_sites(self, admin_a, tenant_a):
        site = estate.make_site(tenant_a)
        response = admin_a.client.post(
            f"{API}/links/",
            {"site_a": site.pk, "site_b": site.pk, "bandwidth_mbps": 1, "latency_ms": 1},
        )
        assert response.status_code == 400
        assert error_fields(response) == {"site_b": ["A link joins two different sites."]}
        assert count_rows(tenant_a, Link) == 0

    @pytest.mark.parametrize("reverse", [False, True], ids=["same-order", "reverse-order"])
    def test_one_link_per_pair_of_sites(self, admin_a, tenant_a, reverse):
        link = estate.make_link(tenant_a)
        a, b = (link.site_b, link.site_a) if reverse else (link.site_a, link.site_b)
        response = admin_a.client.post(
            f"{API}/links/", {"site_a": a.pk, "site_b": b.pk, "bandwidth_mbps": 1, "latency_ms": 1}
        )
        assert response.status_code == 400
        assert error_fields(response) == {
            "site_b": ["A link between these two sites already exists."]
        }
        assert count_rows(tenant_a, Link) == 1

    def test_a_site_in_use_cannot_be_deleted(self, admin_a, tenant_a):
        link = estate.make_link(tenant_a)
        response = admin_a.client.delete(f"{API}/sites/{link.site_a_id}/")
        assert response.status_code == 409
        assert "link" in response.json()["error"]["message"]
        assert count_rows(tenant_a, Site) == 2


class TestCompute:
    def test_a_node_can_name_its_site_by_code_as_in_the_import(self, admin_a, tenant_a):
        site = estate.make_site(tenant_a, code="fra-1")
        response = admin_a.client.post(
            f"{API}/compute/", {"hostname": "n1", "kind": "cpu_node", "site_code": "fra-1"}
        )
        assert response.status_code == 201, response.content
        assert (response.json()["site"], response.json()["site_code"]) == (site.pk, "fra-1")
        with tenant_scope(tenant_a.id):
            assert ComputeResource.objects.get(hostname="n1").site_id == site.pk

    def test_site_and_site_code_must_agree(self, admin_a, tenant_a):
        site, other = estate.make_site(tenant_a), estate.make_site(tenant_a)
        payload = {"hostname": "n1", "kind": "cpu_node", "site": site.pk}
        same = admin_a.client.post(f"{API}/compute/", {**payload, "site_code": site.code})
        assert same.status_code == 201, same.content
        payload["hostname"] = "n2"
        clash = admin_a.client.post(f"{API}/compute/", {**payload, "site_code": other.code})
        assert clash.status_code == 400
        assert list(error_fields(clash)) == ["site_code"]

    def test_a_site_code_of_another_tenant_does_not_exist(self, admin_a, tenant_a, tenant_b):
        estate.make_site(tenant_b, code="borealis-dc")
        response = admin_a.client.post(
            f"{API}/compute/", {"hostname": "n1", "kind": "cpu_node", "site_code": "borealis-dc"}
        )
        assert response.status_code == 400
        assert error_fields(response) == {
            "site_code": ["Object with code=borealis-dc does not exist."]
        }

    def test_a_node_cluster_must_be_a_gpu_cluster(self, admin_a, tenant_a):
        cpu = estate.make_compute(tenant_a, hostname="plain-cpu")
        response = admin_a.client.post(
            f"{API}/compute/", {"hostname": "n1", "kind": "gpu_node", "cluster": cpu.pk}
        )
        assert response.status_code == 400
        assert error_fields(response) == {"cluster": ["'plain-cpu' is not a GPU cluster."]}

    def test_a_cluster_is_in_no_cluster(self, admin_a, tenant_a):
        cluster = estate.make_cluster(tenant_a)
        response = admin_a.client.post(
            f"{API}/compute/", {"hostname": "c2", "kind": "gpu_cluster", "cluster": cluster.pk}
        )
        assert "cluster" in error_fields(response)
        own = admin_a.client.patch(f"{API}/compute/{cluster.pk}/", {"cluster": cluster.pk})
        assert error_fields(own) == {"cluster": ["A resource cannot be its own cluster."]}

    def test_a_cluster_with_nodes_keeps_its_kind(self, admin_a, tenant_a):
        cluster = estate.make_cluster(tenant_a)
        estate.make_gpu_node(tenant_a, cluster=cluster)
        response = admin_a.client.patch(f"{API}/compute/{cluster.pk}/", {"kind": "cpu_node"})
        assert response.status_code == 400
        assert "still has 1 node" in error_fields(response)["kind"][0]

    @pytest.mark.parametrize(
        "uuids",
        [["not-a-uuid"], ["GPU-1"], "GPU-abc", [1, 2]],
        ids=["garbage", "short", "not-a-list", "numbers"],
    )
    def test_gpu_uuids_are_checked(self, admin_a, tenant_a, uuids):
        response = admin_a.client.post(
            f"{API}/compute/",
            {"hostname": "n1", "kind": "gpu_node", "gpu_count": 8, "gpu_uuids": uuids},
        )
        assert response.status_code == 400
        assert "gpu_uuids" in error_fields(response)

    def test_more_uuids_than_gpus_is_refused(self, admin_a, tenant_a):
        response = admin_a.client.post(
            f"{API}/compute/",
            {
                "hostname": "n1",
                "kind": "gpu_node",
                "gpu_count": 1,
                "gpu_uuids": [estate.gpu_uuid(), estate.gpu_uuid()],
            },
        )
        assert error_fields(response) == {"gpu_uuids": ["2 GPU UUIDs for a node with 1 GPUs."]}

    def test_a_hostname_is_unique_per_tenant_only(self, admin_a, tenant_a, tenant_b):
        estate.make_compute(tenant_b, hostname="shared-name")
        created = admin_a.client.post(
            f"{API}/compute/", {"hostname": "shared-name", "kind": "cpu_node"}
        )
        assert created.status_code == 201
        again = admin_a.client.post(
            f"{API}/compute/", {"hostname": "shared-name", "kind": "cpu_node"}
        )
        assert again.status_code == 400
        assert error_fields(again) == {
            "hostname": ["This hostname is already used by another compute resource."]
        }

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"hostname": "x", "kind": "mainframe"}, "kind"),
            ({"hostname": "x", "kind": "cpu_node", "status": "asleep"}, "status"),
            ({"hostname": "x", "kind": "cpu_node", "hourly_cost": "-1"}, "hourly_cost"),
            ({"kind": "cpu_node"}, "hostname"),
            ({"hostname": "x", "kind": "cpu_node", "colour": "red"}, "colour"),
        ],
        ids=["kind", "status", "negative-cost", "missing", "unknown"],
    )
    def test_bad_input_names_the_field(self, admin_a, tenant_a, payload, field):
        response = admin_a.client.post(f"{API}/compute/", payload)
        assert response.status_code == 400
        assert field in error_fields(response)
        assert count_rows(tenant_a, ComputeResource) == 0


class TestSitesAndDatasets:
    def test_countries_are_codes_and_names_are_understood(self, admin_a, tenant_a):
        response = admin_a.client.post(
            f"{API}/sites/", {"code": "ber", "name": "Berlin", "kind": "edge", "country": "Germany"}
        )
        assert response.status_code == 201, response.content
        assert response.json()["country"] == "DE"
        bad = admin_a.client.post(
            f"{API}/sites/", {"code": "x", "name": "X", "kind": "edge", "country": "Atlantis"}
        )
        assert "country" in error_fields(bad)
        event = AuditEvent.objects.get(tenant=tenant_a, object_type="inventory.Site")
        assert event.changes["country"] == [None, "DE"]

    def test_a_dataset_may_have_no_residency(self, admin_a, tenant_a):
        response = admin_a.client.post(f"{API}/datasets/", {"name": "Open data"})
        assert response.status_code == 201, response.content
        assert response.json()["residency_country"] == ""

    def test_a_used_dataset_cannot_be_deleted(self, admin_a, tenant_a):
        usage = estate.make_usage(tenant_a)
        response = admin_a.client.delete(f"{API}/datasets/{usage.dataset_id}/")
        assert response.status_code == 409
        assert count_rows(tenant_a, Dataset) == 1

    def test_the_same_usage_twice_is_refused(self, admin_a, tenant_a):
        usage = estate.make_usage(tenant_a)
        response = admin_a.client.post(
            f"{API}/ai-system-datasets/",
            {"ai_system": usage.ai_system_id, "dataset": usage.dataset_id, "usage": "training"},
        )
        assert response.status_code == 400
        assert error_fields(response) == {
            "dataset": ["This AI system already uses this dataset that way."]
        }


class TestLifecycle:
    def transition(self, actor, system, stage):
        return actor.client.post(f"{API}/ai-systems/{system.pk}/transition", {"stage": stage})

    def test_the_whole_path_is_audited(self, admin_a, tenant_a):
        system = ready_pilot(tenant_a, stage=Stage.PROPOSED)  # passes the readiness gates
        for stage in ("pilot", "production", "retired"):
            response = self.transition(admin_a, system, stage)
            assert response.status_code == 200, response.content
            assert response.json()["stage"] == stage
        changes = AuditEvent.objects.filter(
            tenant=tenant_a, action="transition", object_id=str(system.pk)
        ).values_list("changes", flat=True)
        assert sorted(change["stage"][1] for change in changes) == [
            "pilot",
            "production",
            "retired",
        ]

    @pytest.mark.parametrize(
        ("start", "target", "message"),
        [
            (
                "proposed",
                "production",
                "An AI system cannot move from proposed to production; allowed: pilot, retired.",
            ),
            (
                "production",
                "proposed",
                "An AI system cannot move from production to proposed; allowed: pilot, retired.",
            ),
            (
                "retired",
                "pilot",
                "An AI system cannot move from retired to pilot; allowed: none (final stage).",
            ),
        ],
    )
    def test_illegal_moves_are_refused_the_same_way_by_transition_and_patch(
        self, admin_a, tenant_a, start, target, message
    ):
        system = estate.make_ai_system(tenant_a, stage=start)
        by_action = self.transition(admin_a, system, target)
        by_patch = admin_a.client.patch(f"{API}/ai-systems/{system.pk}/", {"stage": target})
        for response in (by_action, by_patch):
            assert response.status_code == 400
            assert error_fields(response) == {"stage": [message]}
        with tenant_scope(tenant_a.id):
            assert AISystem.objects.get(pk=system.pk).stage == start
        assert not AuditEvent.objects.filter(
            tenant=tenant_a, object_id=str(system.pk), action__in=["update", "transition"]
        ).exists()

    def test_a_legal_patch_moves_the_stage(self, admin_a, tenant_a):
        system = ready_pilot(tenant_a)  # passes the readiness gates
        response = admin_a.client.patch(f"{API}/ai-systems/{system.pk}/", {"stage": "production"})
        assert response.status_code == 200
        assert response.json()["stage"] == "production"

    @pytest.mark.parametrize("body", [{"stage": "dancing"}, {}, {"stage": "pilot", "x": 1}])
    def test_bad_transition_bodies(self, admin_a, tenant_a, body):
        system = estate.make_ai_system(tenant_a, stage=Stage.PROPOSED)
        response = admin_a.client.post(f"{API}/ai-systems/{system.pk}/transition", body)
        assert response.status_code == 400
        assert error_fields(response)
        with tenant_scope(tenant_a.id):
            assert AISystem.objects.get(pk=system.pk).stage == Stage.PROPOSED

    def test_a_transition_to_the_current_stage_is_refused(self, admin_a, tenant_a):
        system = estate.make_ai_system(tenant_a, stage=Stage.PILOT)
        response = self.transition(admin_a, system, "pilot")
        assert error_fields(response) == {"stage": ["The AI system is already in pilot."]}

    def test_viewers_cannot_transition(self, tenant_a):
        viewer = make_member(tenant_a, TenantRole.VIEWER)
        system = estate.make_ai_system(tenant_a, stage=Stage.PROPOSED)
        response = self.transition(Actor(viewer, make_token(viewer)), system, "pilot")
        assert response.status_code == 403


class TestRiskClassification:
    def test_a_new_tier_is_dated_today(self, admin_a, tenant_a):
        system = estate.make_ai_system(tenant_a, risk_tier="unclassified")
        assert system.risk_classified_at is None
        response = admin_a.client.patch(f"{API}/ai-systems/{system.pk}/", {"risk_tier": "high"})
        assert response.json()["risk_classified_at"] == timezone.localdate().isoformat()

    def test_a_given_date_is_kept(self, admin_a, tenant_a):
        system = estate.make_ai_system(tenant_a, risk_tier="minimal")
        response = admin_a.client.patch(
            f"{API}/ai-systems/{system.pk}/",
            {"risk_tier": "limited", "risk_classified_at": "2025-03-01"},
        )
        assert response.json()["risk_classified_at"] == "2025-03-01"

    def test_an_unchanged_tier_keeps_its_date(self, admin_a, tenant_a):
        system = estate.make_ai_system(
            tenant_a, risk_tier="high", risk_classified_at=datetime.date(2024, 1, 2)
        )
        response = admin_a.client.patch(
            f"{API}/ai-systems/{system.pk}/", {"risk_tier": "high", "purpose": "Same tier"}
        )
        assert response.json()["risk_classified_at"] == "2024-01-02"

    def test_back_to_unclassified_clears_the_date(self, admin_a, tenant_a):
        system = estate.make_ai_system(tenant_a, risk_tier="high")
        response = admin_a.client.patch(
            f"{API}/ai-systems/{system.pk}/", {"risk_tier": "unclassified"}
        )
        assert response.json()["risk_classified_at"] is None

    def test_creating_with_a_tier_dates_it(self, admin_a, tenant_a):
        response = admin_a.client.post(
            f"{API}/ai-systems/", {"name": "New", "risk_tier": "prohibited"}
        )
        assert response.json()["risk_classified_at"] == timezone.localdate().isoformat()

    def test_an_unknown_tier_is_refused(self, admin_a, tenant_a):
        response = admin_a.client.post(f"{API}/ai-systems/", {"name": "New", "risk_tier": "mild"})
        assert "risk_tier" in error_fields(response)


class TestRetiredSystems:
    def test_a_retired_system_gains_no_deployment(self, admin_a, tenant_a):
        system = estate.make_ai_system(tenant_a, name="Old bot", stage=Stage.RETIRED)
        response = admin_a.client.post(
            f"{API}/deployments/", {"name": "d", "ai_system": system.pk, "model_version": "1"}
        )
        assert response.status_code == 400
        assert error_fields(response) == {
            "ai_system": ["'Old bot' is retired; a retired system gains no deployments."]
        }
        assert count_rows(tenant_a, Deployment) == 0

    def test_a_deployment_cannot_move_onto_a_retired_system(self, admin_a, tenant_a):
        deployment = estate.make_deployment(tenant_a)
        retired = estate.make_ai_system(tenant_a, stage=Stage.RETIRED)
        response = admin_a.client.patch(
            f"{API}/deployments/{deployment.pk}/", {"ai_system": retired.pk}
        )
        assert response.status_code == 400
        assert "ai_system" in error_fields(response)
        with tenant_scope(tenant_a.id):
            assert Deployment.objects.get(pk=deployment.pk).ai_system_id == deployment.ai_system_id

    def test_a_deployment_of_a_system_retired_later_can_still_be_edited(self, admin_a, tenant_a):
        deployment = estate.make_deployment(tenant_a)
        transition = admin_a.client.post(
            f"{API}/ai-systems/{deployment.ai_system_id}/transition", {"stage": "retired"}
        )
        assert transition.status_code == 200
        response = admin_a.client.patch(
            f"{API}/deployments/{deployment.pk}/",
            {"monitoring_enabled": False, "ai_system": deployment.ai_system_id},
        )
        assert response.status_code == 200, response.content

    def test_a_system_with_deployments_cannot_be_deleted(self, admin_a, tenant_a):
        deployment = estate.make_deployment(tenant_a)
        response = admin_a.client.delete(f"{API}/ai-systems/{deployment.ai_system_id}/")
        assert response.status_code == 409
        assert count_rows(tenant_a, AISystem) == 1


def test_schema_lists_the_inventory_routes(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    for route in (
        "sites/",
        "compute/",
        "cloud-accounts/",
        "links/",
        "ai-systems/",
        "ai-systems/{id}/transition/",
        "ai-system-datasets/",
        "deployments/",
        "datasets/",
        "inventory/import/",
        "inventory/export/",
    ):
        assert any(path.endswith(route) for path in paths), route


class TestRulesBelowTheAPI:
    """The model rules hold for any caller (admin forms, services), not only the API's fields."""

    @pytest.mark.parametrize(
        ("build", "field"),
        [
            (
                lambda a, b: (
                    "link_create",
                    {
                        "site_a": estate.make_site(a),
                        "site_b": estate.make_site(b),
                        "bandwidth_mbps": 1,
                        "latency_ms": 1,
                    },
                ),
                "site_b",
            ),
            (
                lambda a, b: (
                    "compute_create",
                    {"hostname": "n", "kind": "gpu_node", "cluster": estate.make_cluster(b)},
                ),
                "cluster",
            ),
            (
                lambda a, b: (
                    "deployment_create",
                    {"name": "d", "model_version": "1", "ai_system": estate.make_ai_system(b)},
                ),
                "ai_system",
            ),
            (
                lambda a, b: (
                    "ai_system_dataset_create",
                    {"ai_system": estate.make_ai_system(a), "dataset": estate.make_dataset(b)},
                ),
                "dataset",
            ),
        ],
        ids=["link", "cluster", "deployment", "usage"],
    )
    def test_another_tenants_row_is_refused_by_clean(self, tenant_a, tenant_b, build, field):
        name, fields = build(tenant_a, tenant_b)
        with tenant_scope(tenant_a.id), pytest.raises(ValidationError) as caught:
            getattr(services, name)(tenant=tenant_a, **fields)
        assert "does not exist in this tenant" in caught.value.message_dict[field][0]
