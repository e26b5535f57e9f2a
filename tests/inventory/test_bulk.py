"""Bulk import and export: round trips, upserts by natural key, all-or-nothing failures, CSV."""

from __future__ import annotations

import copy
import datetime
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

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
from tenants.models import AuditEvent, Tenant
from tenants.scoping import tenant_scope
from tests.inventory import estate

pytestmark = pytest.mark.django_db

MODELS = (Site, Link, CloudAccount, ComputeResource, AISystem, AISystemDataset, Deployment, Dataset)


def url(tenant, what: str) -> str:
    return f"/api/v1/tenants/{tenant.slug}/inventory/{what}"


def export(actor, tenant) -> dict:
    response = actor.client.get(url(tenant, "export"))
    assert response.status_code == 200, response.content
    return response.json()


def post(actor, tenant, document, **params):
    path = url(tenant, "import")
    if params:
        path += "?" + "&".join(f"{key}={value}" for key, value in params.items())
    return actor.client.post(path, document, format="json")


def table_counts() -> dict:
    """Rows of every inventory table in every tenant (in scope, so RLS shows them), and every
    audit event."""
    with tenant_scope(*Tenant.objects.values_list("id", flat=True)):
        counts = {model._meta.label: model.objects.count() for model in MODELS}
    counts["audit"] = AuditEvent.objects.count()
    assert counts["inventory.Site"] or counts["audit"], "nothing to compare"
    return counts


def fields_of(response) -> dict:
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert body["code"] == "invalid"
    return body["fields"]


@pytest.fixture
def rich_estate(tenant_a):
    """An estate that touches every section, reference and value type."""
    t = tenant_a
    lon = estate.make_site(t, code="lon-dc1", name="London DC1", country="GB", region="London")
    fra = estate.make_site(
        t, code="aws-eu-central-1", name="Frankfurt", kind="cloud_region", country="DE"
    )
    edge = estate.make_site(t, code="edge-leeds", name="Leeds store", kind="edge", country="GB")
    aws = estate.make_cloud_account(
        t, provider="aws", account_id="123456789012", name="Prod", monthly_budget="42000.50"
    )
    estate.make_cloud_account(t, provider="azure", account_id="sub-1", monthly_budget=None)
    cluster = estate.make_cluster(t, hostname="lon-gpu-cluster", site=lon, gpu_count=16)
    node = estate.make_gpu_node(t, cluster=cluster, site=lon, hostname="lon-gpu-01")
    estate.make_gpu_node(t, cluster=cluster, site=lon, hostname="lon-gpu-02", status="maintenance")
    endpoint = estate.make_compute(
        t, hostname="bedrock-eu", kind="managed_endpoint", site=fra, cloud_account=aws
    )
    estate.make_link(t, site_a=lon, site_b=fra, redundancy="active_passive", provider="Colt")
    estate.make_link(t, site_a=edge, site_b=lon, bandwidth_mbps=500, latency_ms="12.25")
    loans = estate.make_dataset(
        t,
        name="Loan book",
        classification="restricted",
        personal_data=True,
        residency_country="GB",
        retention_days=2555,
        quality_score=91,
        last_validated_at=datetime.datetime(2025, 5, 1, 9, 30, tzinfo=datetime.UTC),
    )
    public = estate.make_dataset(t, name="ONS statistics", classification="public")
    scoring = estate.make_ai_system(
        t,
        name="Credit scoring",
        stage=Stage.PRODUCTION,
        risk_tier="high",
        risk_classified_at=datetime.date(2025, 1, 15),
        personal_data=True,
        human_oversight=True,
        human_overseer="Credit risk desk",
    )
    old_bot = estate.make_ai_system(t, name="Old chatbot", stage=Stage.PRODUCTION)
    estate.make_ai_system(t, name="Emotion detection", stage=Stage.PROPOSED, risk_tier="prohibited")
    estate.make_usage(t, ai_system=scoring, dataset=loans, usage="training")
    estate.make_usage(t, ai_system=scoring, dataset=public, usage="evaluation")
    estate.make_deployment(
        t,
        ai_system=scoring,
        compute=node,
        name="scoring-prod",
        endpoint="https://scoring.acme.example/v2",
        monitoring_enabled=True,
        runbook_url="https://runbooks.acme.example/scoring",
        deployed_at=datetime.datetime(2025, 2, 1, 12, 0, tzinfo=datetime.UTC),
        log_retention_days=365,
    )
    estate.make_deployment(t, ai_system=old_bot, compute=endpoint, name="old-bot-prod")
    # Retired while still deployed: the export must import cleanly all the same.
    with tenant_scope(t.id):
        services.ai_system_transition(tenant=t, ai_system=old_bot, stage=Stage.RETIRED)


class TestExport:
    def test_the_document_has_every_section_with_natural_keys(self, admin_a, tenant_a, rich_estate):
        document = export(admin_a, tenant_a)
        assert list(document) == [
            "sites",
            "cloud_accounts",
            "compute",
            "links",
            "datasets",
            "ai_systems",
            "deployments",
        ]
        node = next(row for row in document["compute"] if row["hostname"] == "lon-gpu-01")
        assert node["cluster"] == "lon-gpu-cluster"
        assert node["site"] == "lon-dc1"
        assert "id" not in node
        assert "created_at" not in node
        endpoint = next(row for row in document["compute"] if row["hostname"] == "bedrock-eu")
        assert endpoint["cloud_account"] == "aws:123456789012"
        assert {(row["site_a"], row["site_b"]) for row in document["links"]} == {
            ("lon-dc1", "aws-eu-central-1"),
            ("edge-leeds", "lon-dc1"),
        }
        scoring = next(row for row in document["ai_systems"] if row["name"] == "Credit scoring")
        assert scoring["datasets"] == [
            {"dataset": "Loan book", "usage": "training"},
            {"dataset": "ONS statistics", "usage": "evaluation"},
        ]
        deployment = next(row for row in document["deployments"] if row["name"] == "scoring-prod")
        assert (deployment["ai_system"], deployment["compute"]) == ("Credit scoring", "lon-gpu-01")

    def test_csv_export_of_compute(self, admin_a, tenant_a, rich_estate):
        response = admin_a.client.get(url(tenant_a, "export"), {"format": "csv"})
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        lines = response.content.decode().splitlines()
        assert lines[0].split(",")[:4] == ["hostname", "kind", "status", "site"]
        assert len(lines) == 1 + 4
        node = next(line for line in lines if line.startswith("lon-gpu-01,"))
        assert ",lon-gpu-cluster," in node
        assert node.count("GPU-") == 2
        assert ";" in node


class TestRoundTrip:
    def test_export_import_into_another_tenant_gives_an_identical_export(
        self, admin_a, admin_b, tenant_a, tenant_b, rich_estate
    ):
        document = export(admin_a, tenant_a)
        response = post(admin_b, tenant_b, document)
        assert response.status_code == 200, response.content
        sections = response.json()["sections"]
        assert sections["compute"] == {"created": 4, "updated": 0, "unchanged": 0}
        assert sections["ai_systems"]["created"] == 3
        assert export(admin_b, tenant_b) == document
        with tenant_scope(tenant_b.id):
            assert AISystem.objects.get(name="Old chatbot").stage == Stage.RETIRED
            assert Deployment.objects.get(name="old-bot-prod").ai_system.name == "Old chatbot"

    def test_re_import_into_the_same_tenant_changes_nothing(self, admin_a, tenant_a, rich_estate):
        document = export(admin_a, tenant_a)
        before = table_counts()
        with tenant_scope(tenant_a.id):
            stamps = {
                model: list(model.objects.values_list("pk", "updated_at"))
                for model in (Site, ComputeResource, AISystem, Deployment)
            }
        response = post(admin_a, tenant_a, document)
        assert response.status_code == 200, response.content
        for section, counts in response.json()["sections"].items():
            assert counts["created"] == counts["updated"] == 0, section
            assert counts["unchanged"] == len(document[section]), section
        assert table_counts() == before
        with tenant_scope(tenant_a.id):
            for model, values in stamps.items():
                assert list(model.objects.values_list("pk", "updated_at")) == values
        assert export(admin_a, tenant_a) == document

    def test_a_changed_row_is_updated_and_audited(self, admin_a, tenant_a, rich_estate):
        document = export(admin_a, tenant_a)
        for row in document["compute"]:
            if row["hostname"] == "lon-gpu-02":
                row["status"] = "active"
        for row in document["ai_systems"]:
            if row["name"] == "Credit scoring":
                row["datasets"] = [{"dataset": "Loan book", "usage": "inference"}]
        response = post(admin_a, tenant_a, document)
        sections = response.json()["sections"]
        assert sections["compute"] == {"created": 0, "updated": 1, "unchanged": 3}
        assert sections["ai_systems"] == {"created": 0, "updated": 1, "unchanged": 2}
        with tenant_scope(tenant_a.id):
            node = ComputeResource.objects.get(hostname="lon-gpu-02")
            usage = AISystemDataset.objects.filter(ai_system__name="Credit scoring")
            assert sorted(usage.values_list("dataset__name", "usage")) == [
                ("Loan book", "inference")
            ]
        assert node.status == "active"
        event = AuditEvent.objects.get(object_type="inventory.ComputeResource", action="update")
        assert event.changes["status"] == ["maintenance", "active"]

    def test_rows_give_only_the_fields_they_change(self, admin_a, tenant_a, rich_estate):
        response = post(
            admin_a, tenant_a, {"compute": [{"hostname": "lon-gpu-01", "hourly_cost": "9.75"}]}
        )
        assert response.json()["sections"]["compute"]["updated"] == 1
        with tenant_scope(tenant_a.id):
            node = ComputeResource.objects.get(hostname="lon-gpu-01")
        assert str(node.hourly_cost) == "9.7500"
        assert node.cluster_id is not None
        assert node.gpu_count == 2

    def test_unchanged_re_import_runs_the_same_queries_for_few_and_many_rows(
        self, admin_a, tenant_a
    ):
        for _ in range(3):
            estate.make_gpu_node(tenant_a, site=estate.make_site(tenant_a))
        small = export(admin_a, tenant_a)
        post(admin_a, tenant_a, small)
        with CaptureQueriesContext(connection) as few:
            assert post(admin_a, tenant_a, small).status_code == 200
        for _ in range(20):
            estate.make_gpu_node(tenant_a, site=estate.make_site(tenant_a))
        large = export(admin_a, tenant_a)
        with CaptureQueriesContext(connection) as many:
            assert post(admin_a, tenant_a, large).status_code == 200
        assert len(large["compute"]) == 23
        assert len(many) == len(few)


class TestUpserts:
    def test_references_by_natural_key_in_every_form(self, admin_a, tenant_a):
        document = {
            "sites": [{"code": "par", "name": "Paris", "kind": "colocation", "country": "FR"}],
            "cloud_accounts": [
                {"provider": "gcp", "account_id": "proj-a", "monthly_budget": "100"},
                {"provider": "aws", "account_id": "111", "monthly_budget": "200"},
            ],
            "compute": [
                # A node before its cluster: clusters are imported first.
                {
                    "hostname": "par-node-1",
                    "kind": "gpu_node",
                    "cluster": "par-cluster",
                    "gpu_count": 1,
                    "gpu_uuids": [estate.gpu_uuid()],
                    "cloud_account": {"provider": "gcp", "account_id": "proj-a"},
                },
                {"hostname": "par-cluster", "kind": "gpu_cluster", "site": "par"},
                {"hostname": "ep", "kind": "managed_endpoint", "cloud_account": "aws:111"},
            ],
        }
        response = post(admin_a, tenant_a, document)
        assert response.status_code == 200, response.content
        assert response.json()["sections"]["compute"]["created"] == 3
        with tenant_scope(tenant_a.id):
            node = ComputeResource.objects.select_related("cluster", "cloud_account").get(
                hostname="par-node-1"
            )
            assert node.cluster.hostname == "par-cluster"
            assert node.cloud_account.account_id == "proj-a"

    def test_a_link_is_found_by_its_sites_in_either_order(self, admin_a, tenant_a):
        link = estate.make_link(tenant_a)
        row = {
            "site_a": link.site_b.code,
            "site_b": link.site_a.code,
            "bandwidth_mbps": 777,
            "latency_ms": "2.00",
        }
        response = post(admin_a, tenant_a, {"links": [row]})
        assert response.json()["sections"]["links"] == {"created": 0, "updated": 1, "unchanged": 0}
        with tenant_scope(tenant_a.id):
            assert Link.objects.count() == 1
            assert Link.objects.get().bandwidth_mbps == 777

    def test_a_new_system_may_arrive_retired_with_its_deployments(self, admin_a, tenant_a):
        document = {
            "ai_systems": [{"name": "Legacy OCR", "stage": "retired"}],
            "deployments": [{"name": "ocr", "ai_system": "Legacy OCR", "model_version": "1"}],
        }
        response = post(admin_a, tenant_a, document)
        assert response.status_code == 200, response.content
        with tenant_scope(tenant_a.id):
            assert AISystem.objects.get(name="Legacy OCR").stage == Stage.RETIRED
        actions = AuditEvent.objects.filter(object_type="inventory.AISystem").values_list(
            "action", flat=True
        )
        assert sorted(actions) == ["create", "transition"]

    def test_dataset_usage_defaults_to_training_on_new_and_known_systems(self, admin_a, tenant_a):
        estate.make_dataset(tenant_a, name="Logs")
        estate.make_ai_system(tenant_a, name="Known")
        document = {
            "ai_systems": [
                {"name": "Known", "datasets": [{"dataset": "Logs"}]},
                {"name": "New", "datasets": [{"dataset": "Logs"}]},
            ]
        }
        response = post(admin_a, tenant_a, document)
        assert response.status_code == 200, response.content
        assert response.json()["sections"]["ai_systems"] == {
            "created": 1,
            "updated": 1,
            "unchanged": 0,
        }
        with tenant_scope(tenant_a.id):
            usage = AISystemDataset.objects.values_list("ai_system__name", "usage")
            assert sorted(usage) == [("Known", "training"), ("New", "training")]

    def test_dry_run_counts_and_writes_nothing(self, admin_a, tenant_a):
        before = table_counts()
        document = {"sites": [{"code": "x", "name": "X", "kind": "edge", "country": "GB"}]}
        response = post(admin_a, tenant_a, document, dry_run="true")
        assert response.status_code == 200
        assert response.json() == {
            "dry_run": True,
            "sections": {
                **{
                    s: {"created": 0, "updated": 0, "unchanged": 0}
                    for s in (
                        "sites",
                        "cloud_accounts",
                        "compute",
                        "links",
                        "datasets",
                        "ai_systems",
                        "deployments",
                    )
                },
                "sites": {"created": 1, "updated": 0, "unchanged": 0},
            },
        }
        assert table_counts() == before


class TestAllOrNothing:
    def good_document(self) -> dict:
        return {
            "sites": [
                {"code": f"s{i}", "name": f"Site {i}", "kind": "on_prem_dc", "country": "GB"}
                for i in range(3)
            ],
            "datasets": [{"name": "Telemetry", "classification": "internal"}],
            "compute": [
                {"hostname": f"host-{i}", "kind": "cpu_node", "site": f"s{i % 3}"} for i in range(6)
            ],
            "ai_systems": [{"name": "Forecast", "risk_tier": "minimal"}],
        }

    def test_a_bad_row_in_the_middle_writes_nothing(self, admin_a, tenant_a, tenant_b):
        estate.make_site(tenant_a, code="existing")
        estate.make_site(tenant_b, code="lon-9")  # B's key means nothing in A
        before = table_counts()
        document = self.good_document()
        document["compute"][3]["site"] = "lon-9"
        response = post(admin_a, tenant_a, document)
        assert fields_of(response) == {"compute.3.site": ["Unknown site 'lon-9'."]}
        assert response.json()["error"]["message"] == "Invalid input."
        assert table_counts() == before

    def test_every_bad_row_is_reported_with_its_path(self, admin_a, tenant_a):
        before = table_counts()
        document = self.good_document()
        document["sites"][1]["kind"] = "moon_base"
        document["compute"][4] = {"hostname": "host-4", "kind": "gpu_node", "cluster": "host-0"}
        document["compute"].append({"hostname": "host-0", "kind": "cpu_node"})
        document["ai_systems"].append(
            {"name": "Bot", "datasets": [{"dataset": "Telemetry"}, {"dataset": "Nope"}]}
        )
        document["links"] = [{"site_a": "s0", "site_b": "s0", "bandwidth_mbps": 1, "latency_ms": 1}]
        document["deployments"] = [{"name": "d1", "ai_system": "Forecast"}]
        fields = fields_of(post(admin_a, tenant_a, document))
        assert set(fields) == {
            "sites.1.kind",
            "compute.1.site",  # its site s1 was the bad row sites.1
            "compute.4.cluster",
            "compute.6.hostname",
            "ai_systems.1.datasets.1.dataset",
            "links.0.site_b",
            "deployments.0.model_version",
        }
        assert fields["compute.4.cluster"] == ["'host-0' is not a GPU cluster."]
        assert fields["compute.6.hostname"] == ["Row 0 already has this key."]
        assert fields["ai_systems.1.datasets.1.dataset"] == ["Unknown dataset 'Nope'."]
        assert fields["links.0.site_b"] == ["A link joins two different sites."]
        assert table_counts() == before

    def test_service_rules_apply_to_imported_rows(self, admin_a, tenant_a):
        estate.make_ai_system(tenant_a, name="Live", stage=Stage.PRODUCTION)
        estate.make_ai_system(tenant_a, name="Gone", stage=Stage.RETIRED)
        before = table_counts()
        document = {
            "ai_systems": [{"name": "Live", "stage": "proposed"}],
            "deployments": [{"name": "late", "ai_system": "Gone", "model_version": "1"}],
        }
        fields = fields_of(post(admin_a, tenant_a, document))
        assert fields == {
            "ai_systems.0.stage": [
                "An AI system cannot move from production to proposed; allowed: pilot, retired."
            ],
            "deployments.0.ai_system": [
                "'Gone' is retired; a retired system gains no deployments."
            ],
        }
        assert table_counts() == before

    @pytest.mark.parametrize(
        ("document", "fields"),
        [
            ([], {"non_field_errors"}),
            ({"robots": []}, {"robots"}),
            ({"sites": {"code": "x"}}, {"sites"}),
            ({"sites": ["x"]}, {"sites.0"}),
            (
                {"sites": [{"code": "x", "name": "X", "kind": "edge", "country": "GB", "id": 4}]},
                {"sites.0.id"},
            ),
            (
                {"compute": [{"hostname": "h", "kind": "cpu_node", "cloud_account": "aws"}]},
                {"compute.0.cloud_account"},
            ),
        ],
        ids=[
            "not-an-object",
            "unknown-section",
            "not-a-list",
            "not-a-row",
            "unknown-field",
            "bad-reference",
        ],
    )
    def test_malformed_documents(self, admin_a, tenant_a, document, fields):
        before = table_counts()
        response = post(admin_a, tenant_a, document)
        assert set(fields_of(response)) == fields
        assert table_counts() == before


class TestCSV:
    def post_csv(self, actor, tenant, text: str):
        return actor.client.post(url(tenant, "import"), data=text, content_type="text/csv")

    def test_compute_rows_from_csv(self, admin_a, tenant_a):
        estate.make_site(tenant_a, code="lon")
        uuid_1, uuid_2 = estate.gpu_uuid(), estate.gpu_uuid()
        text = (
            "hostname,kind,site,cluster,gpu_model,gpu_count,hourly_cost,gpu_uuids\n"
            "lon-cluster,gpu_cluster,lon,,,0,,\n"
            f"lon-gpu-1,gpu_node,lon,lon-cluster,NVIDIA H100,2,7.5,{uuid_1};{uuid_2}\n"
        )
        response = self.post_csv(admin_a, tenant_a, text)
        assert response.status_code == 200, response.content
        assert response.json()["sections"]["compute"]["created"] == 2
        with tenant_scope(tenant_a.id):
            node = ComputeResource.objects.select_related("cluster").get(hostname="lon-gpu-1")
        assert node.cluster.hostname == "lon-cluster"
        assert node.gpu_uuids == [uuid_1, uuid_2]
        assert str(node.hourly_cost) == "7.5000"

    def test_csv_round_trip(self, admin_a, admin_b, tenant_a, tenant_b, rich_estate):
        csv_text = admin_a.client.get(url(tenant_a, "export"), {"format": "csv"}).content.decode()
        again = self.post_csv(admin_a, tenant_a, csv_text)
        assert again.json()["sections"]["compute"] == {"created": 0, "updated": 0, "unchanged": 4}
        # Into B, the compute rows need B's sites and accounts first.
        document = export(admin_a, tenant_a)
        post(admin_b, tenant_b, {key: document[key] for key in ("sites", "cloud_accounts")})
        created = self.post_csv(admin_b, tenant_b, csv_text)
        assert created.json()["sections"]["compute"]["created"] == 4
        assert export(admin_b, tenant_b)["compute"] == document["compute"]

    def test_a_bad_csv_row_names_its_index_and_writes_nothing(self, admin_a, tenant_a):
        before = table_counts()
        text = "hostname,kind,gpu_count\nok-1,cpu_node,0\nbad,fridge,0\nbad-2,cpu_node,many\n"
        fields = fields_of(self.post_csv(admin_a, tenant_a, text))
        assert set(fields) == {"compute.1.kind", "compute.2.gpu_count"}
        assert table_counts() == before

    @pytest.mark.parametrize(
        "body",
        [b"\n", b"\xff\xfe\x00bad", b"hostname,kind\nh,cpu_node,extra\n"],
        ids=["no-header", "not-utf8", "extra-cell"],
    )
    def test_unreadable_csv_is_a_clean_400(self, admin_a, tenant_a, body):
        response = admin_a.client.post(url(tenant_a, "import"), data=body, content_type="text/csv")
        assert response.status_code == 400
        assert set(response.json()) == {"error"}


def test_the_document_survives_json_text(admin_a, admin_b, tenant_a, tenant_b, rich_estate):
    """What a person saves to a file and posts back later is the same document."""
    document = json.loads(json.dumps(export(admin_a, tenant_a)))
    assert post(admin_b, tenant_b, copy.deepcopy(document)).status_code == 200
    assert export(admin_b, tenant_b) == document
