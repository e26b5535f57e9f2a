"""The rescore's plain-SQL reads (the estate union, the rescore inputs, the incidents
aggregate): the same rows and types as the ORM reads they replace, only the asked tenant's rows
even under a wider scope, and refused outside that tenant's scope, as the scoped managers
refuse."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from operations.incidents.selectors import incident_readiness_figures
from operations.inventory.models import AISystem, CloudAccount, ComputeResource, Dataset, Deployment
from operations.inventory.selectors import readiness_estate_rows
from operations.readiness.selectors import readiness_rescore_inputs
from tenants.scoping import TenantScopeMissing, tenant_scope
from tests.factories import TenantFactory
from tests.inventory.estate import (
    make_ai_system,
    make_cloud_account,
    make_cluster,
    make_dataset,
    make_deployment,
    make_gpu_node,
    make_site,
)
from tests.readiness.builders_core import submitted_assessment

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant_a(db):
    return TenantFactory(slug="acme", industry="Finance")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(slug="borealis", industry="Finance")


def estate(tenant, n: int) -> None:
    site = make_site(tenant)
    account = make_cloud_account(tenant, monthly_budget=Decimal("1234.50"), currency="EUR")
    make_cloud_account(tenant, monthly_budget=None)  # no budget: not read
    cluster = make_cluster(tenant, site=site)
    node = make_gpu_node(
        tenant, cluster=cluster, site=site, cloud_account=account, hourly_cost=Decimal("2.5")
    )
    make_gpu_node(tenant, status="retired")  # not read
    system = make_ai_system(
        tenant, risk_tier="high", fria_required=True, fria_completed_at=dt.date(2026, 3, n)
    )
    make_ai_system(tenant, stage="retired")  # not read
    make_deployment(
        tenant,
        name=f"prod-{tenant.slug}",
        ai_system=system,
        compute=node,
        environment="production",
        monitoring_enabled=True,
        runbook_url="https://runbooks.example.com/x",
    )
    make_deployment(tenant, ai_system=system, environment="staging")  # not read
    make_dataset(tenant, personal_data=True, residency_country="FR", owner="CDO")


def orm_estate(tenant) -> dict[str, list[dict]]:
    """What the union replaced, read through the ORM."""
    with tenant_scope(tenant.id):
        return {
            "compute": list(
                ComputeResource.objects.filter(tenant=tenant)
                .exclude(status="retired")
                .order_by("hostname", "kind")
                .values(
                    "id",
                    "hostname",
                    "kind",
                    "status",
                    "cloud_account__currency",
                    "cluster_id",
                    "site_id",
                    "cloud_account_id",
                    "gpu_count",
                    "hourly_cost",
                )
            ),
            "production": list(
                Deployment.objects.filter(tenant=tenant, environment="production")
                .order_by("name", "runbook_url")
                .values(
                    "id",
                    "name",
                    "runbook_url",
                    "compute__kind",
                    "compute_id",
                    "compute__site_id",
                    "monitoring_enabled",
                )
            ),
            "datasets": list(
                Dataset.objects.filter(tenant=tenant)
                .order_by("name", "owner")
                .values(
                    "id",
                    "name",
                    "owner",
                    "classification",
                    "residency_country",
                    "provenance",
                    "licence",
                    "personal_data",
                )
            ),
            "ai_systems": list(
                AISystem.objects.filter(tenant=tenant)
                .exclude(stage="retired")
                .order_by("name", "stage")
                .values(
                    "id",
                    "name",
                    "stage",
                    "risk_tier",
                    "business_owner",
                    "technical_owner",
                    "fria_required",
                    "fria_completed_at",
                )
            ),
            "cloud_accounts": list(
                CloudAccount.objects.filter(tenant=tenant, monthly_budget__isnull=False)
                .order_by("provider", "account_id")
                .values("id", "provider", "account_id", "name", "currency", "monthly_budget")
            ),
        }


def test_the_estate_union_reads_what_the_orm_reads_with_the_same_types(tenant_a, tenant_b):
    estate(tenant_a, 1)
    estate(tenant_b, 2)
    with tenant_scope(tenant_a.id):
        rows = readiness_estate_rows(tenant=tenant_a)
    assert rows == orm_estate(tenant_a)
    assert [len(rows[name]) for name in rows] == [2, 1, 1, 1, 1]
    node = next(row for row in rows["compute"] if row["kind"] == "gpu_node")
    assert (str(node["hourly_cost"]), node["cloud_account__currency"]) == ("2.5000", "EUR")
    assert rows["production"][0]["monitoring_enabled"] is True
    assert rows["datasets"][0]["personal_data"] is True
    assert rows["ai_systems"][0]["fria_completed_at"] == dt.date(2026, 3, 1)
    assert rows["cloud_accounts"][0]["monthly_budget"] == Decimal("1234.50")


def test_under_a_wider_scope_only_the_asked_tenants_rows_come_back(tenant_a, tenant_b):
    estate(tenant_a, 1)
    estate(tenant_b, 2)
    submitted_assessment(tenant_b, _framework(), value=4)
    with tenant_scope(tenant_a.id, tenant_b.id):
        rows = readiness_estate_rows(tenant=tenant_a)
        inputs = readiness_rescore_inputs(tenant=tenant_a)
    assert rows == orm_estate(tenant_a)
    assert (inputs.assessment_id, inputs.answers) == (None, {})  # b's answers are not a's


@pytest.mark.parametrize("scope", ["none", "other"])
def test_each_plain_sql_read_is_refused_outside_the_tenants_scope(tenant_a, tenant_b, scope):
    now = timezone.now()
    reads = [
        lambda: readiness_estate_rows(tenant=tenant_a),
        lambda: readiness_rescore_inputs(tenant=tenant_a),
        lambda: incident_readiness_figures(
            tenant=tenant_a, start=now - dt.timedelta(days=90), end=now, limit=10
        ),
    ]
    for read in reads:
        if scope == "none":
            with pytest.raises(TenantScopeMissing):
                read()
        else:
            with tenant_scope(tenant_b.id), pytest.raises(TenantScopeMissing):
                read()


def _framework():
    from operations.readiness.catalogue import readiness_frameworks_load
    from operations.readiness.selectors import readiness_framework_current

    readiness_frameworks_load()
    return readiness_framework_current()
