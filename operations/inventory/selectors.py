"""Reads of the inventory: the joins each list needs (one query per list, whatever its length)
and the whole estate of a tenant for export. Call inside the tenant's scope."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import (
    BigIntegerField,
    BooleanField,
    CharField,
    Count,
    DateField,
    DecimalField,
    Exists,
    F,
    Model,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce

from operations.inventory.models import (
    AISystem,
    AISystemDataset,
    CloudAccount,
    ComputeResource,
    ComputeStatus,
    Dataset,
    Deployment,
    Environment,
    Link,
    Redundancy,
    Site,
    Stage,
)


def dataset_usage_ordered() -> QuerySet[AISystemDataset]:
    """Usage rows with their dataset, in the order an AI system shows them."""
    return AISystemDataset.objects.select_related("dataset").order_by("dataset__name", "usage")


def _joined_columns_except(relation: str, model: type[Model], keep: set[str]) -> list[str]:
    """``relation__<column>`` for every column of ``model`` but its key and ``keep``."""
    return [
        f"{relation}__{field.name}"
        for field in model._meta.concrete_fields
        if not field.primary_key and field.name not in keep and field.attname not in keep
    ]


# What a compute row reads of its joined rows: their names (the API, their __str__) and the
# tenant and kind its rules check on a write. Loading the rest (timestamps, JSON, decimals)
# was a third of fetching a 100-row list; a deferred column is still read on demand.
_COMPUTE_JOINED_UNUSED = [
    *_joined_columns_except("site", Site, {"tenant", "code", "name"}),
    *_joined_columns_except("cluster", ComputeResource, {"tenant", "hostname", "kind"}),
    *_joined_columns_except("cloud_account", CloudAccount, {"tenant", "provider", "account_id"}),
]


def compute_with_references(queryset: QuerySet[ComputeResource]) -> QuerySet[ComputeResource]:
    # A correlated count, not Count("nodes") over a join: no GROUP BY of every column, and a
    # page's count() drops it (Django strips unused annotations that are not aggregates).
    nodes = (
        ComputeResource.objects.filter(cluster=OuterRef("pk"))
        .order_by()
        .values("cluster")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return (
        queryset.select_related("site", "cluster", "cloud_account")
        .defer(*_COMPUTE_JOINED_UNUSED)
        .annotate(node_count=Coalesce(Subquery(nodes), 0))
    )


def links_with_sites(queryset: QuerySet[Link]) -> QuerySet[Link]:
    return queryset.select_related("site_a", "site_b")


def ai_systems_with_usage(queryset: QuerySet[AISystem]) -> QuerySet[AISystem]:
    return queryset.prefetch_related(
        Prefetch("dataset_usage", queryset=dataset_usage_ordered())
    ).annotate(deployment_count=Count("deployments", distinct=True))


def deployments_with_references(queryset: QuerySet[Deployment]) -> QuerySet[Deployment]:
    return queryset.select_related("ai_system", "compute")


def dataset_usage_with_names(queryset: QuerySet[AISystemDataset]) -> QuerySet[AISystemDataset]:
    return queryset.select_related("ai_system", "dataset")


def inventory_querysets(*, tenant) -> dict[str, QuerySet]:
    """Every section of the tenant's estate with its references, in export order."""
    return {
        "sites": Site.objects.filter(tenant=tenant).order_by("code"),
        "cloud_accounts": CloudAccount.objects.filter(tenant=tenant).order_by(
            "provider", "account_id"
        ),
        "compute": ComputeResource.objects.filter(tenant=tenant)
        .select_related("site", "cluster", "cloud_account")
        .order_by("hostname"),
        "links": links_with_sites(Link.objects.filter(tenant=tenant)).order_by(
            "site_a__code", "site_b__code"
        ),
        "datasets": Dataset.objects.filter(tenant=tenant).order_by("name"),
        "ai_systems": AISystem.objects.filter(tenant=tenant)
        .prefetch_related(Prefetch("dataset_usage", queryset=dataset_usage_ordered()))
        .order_by("name"),
        "deployments": deployments_with_references(
            Deployment.objects.filter(tenant=tenant)
        ).order_by("name"),
    }


def estate_tables(*, tenant) -> dict[str, list]:
    """The tenant's estate as the portal lists it, one query per table: every section of
    ``inventory_querysets``, compute by kind with its node count, AI systems with their
    deployment count."""
    tables = inventory_querysets(tenant=tenant)
    tables["compute"] = compute_with_references(
        ComputeResource.objects.filter(tenant=tenant)
    ).order_by("kind", "hostname")
    tables["ai_systems"] = ai_systems_with_usage(AISystem.objects.filter(tenant=tenant)).order_by(
        "name"
    )
    return {name: list(queryset) for name, queryset in tables.items()}


def compute_get_for_page(*, tenant, pk: int) -> ComputeResource | None:
    """One compute resource of the tenant with its site, cluster and cloud account. One query."""
    return (
        ComputeResource.objects.filter(tenant=tenant)
        .select_related("site", "cluster", "cloud_account")
        .filter(pk=pk)
        .first()
    )


def deployment_get_for_page(*, tenant, pk: int) -> Deployment | None:
    """One deployment of the tenant with its AI system and compute. One query."""
    return (
        Deployment.objects.filter(tenant=tenant)
        .select_related("ai_system", "compute__cloud_account")
        .filter(pk=pk)
        .first()
    )


# --- Figures for the readiness signals (a fixed number of queries, whatever the estate's size) ----


#: The columns of ``readiness_estate_rows``' union, each with the type its NULL filler is cast
#: to (PostgreSQL will not guess it; the first branch's types decide how values are read).
_ESTATE_SLOTS = {
    "id": BigIntegerField,
    "s": CharField,
    "t1": CharField,
    "t2": CharField,
    "t3": CharField,
    "t4": CharField,
    "t5": CharField,
    "i1": BigIntegerField,
    "i2": BigIntegerField,
    "i3": BigIntegerField,
    "i4": BigIntegerField,
    "b1": BooleanField,
    "d1": lambda: DecimalField(max_digits=14, decimal_places=4),
    "dt1": DateField,
}

#: Per section: its rows (queryset) and {row key: slot}; "s" then "t1" order the rows.
_ESTATE_SECTIONS = {
    # The compute that is not retired: cluster, site, cloud account (and its currency),
    # GPU count and hourly cost.
    "compute": (
        lambda tenant: ComputeResource.objects.filter(tenant=tenant).exclude(
            status=ComputeStatus.RETIRED
        ),
        {
            "id": "id",
            "hostname": "s",
            "kind": "t1",
            "status": "t2",
            "cloud_account__currency": "t3",
            "cluster_id": "i1",
            "site_id": "i2",
            "cloud_account_id": "i3",
            "gpu_count": "i4",
            "hourly_cost": "d1",
        },
    ),
    # Production deployments with what operating one needs and where it runs.
    "production": (
        lambda tenant: Deployment.objects.filter(tenant=tenant, environment=Environment.PRODUCTION),
        {
            "id": "id",
            "name": "s",
            "runbook_url": "t1",
            "compute__kind": "t2",
            "compute_id": "i1",
            "compute__site_id": "i2",
            "monitoring_enabled": "b1",
        },
    ),
    # Datasets with the metadata readiness asks of them.
    "datasets": (
        lambda tenant: Dataset.objects.filter(tenant=tenant),
        {
            "id": "id",
            "name": "s",
            "owner": "t1",
            "classification": "t2",
            "residency_country": "t3",
            "provenance": "t4",
            "licence": "t5",
            "personal_data": "b1",
        },
    ),
    # AI systems that are not retired: stage, risk tier, FRIA, owners.
    "ai_systems": (
        lambda tenant: AISystem.objects.filter(tenant=tenant).exclude(stage=Stage.RETIRED),
        {
            "id": "id",
            "name": "s",
            "stage": "t1",
            "risk_tier": "t2",
            "business_owner": "t3",
            "technical_owner": "t4",
            "fria_required": "b1",
            "fria_completed_at": "dt1",
        },
    ),
    # Cloud accounts that have a monthly budget, by provider and account id.
    "cloud_accounts": (
        lambda tenant: CloudAccount.objects.filter(tenant=tenant, monthly_budget__isnull=False),
        {
            "id": "id",
            "provider": "s",
            "account_id": "t1",
            "name": "t2",
            "currency": "t3",
            "monthly_budget": "d1",
        },
    ),
}


def readiness_estate_rows(*, tenant) -> dict[str, list[dict]]:
    """What the readiness signals read of the estate, in one query (a union, so one round trip
    per tenant in a fleet scan): {section: rows}, each section ordered by its name (cloud
    accounts by provider and account id). Sections: see ``_ESTATE_SECTIONS``."""
    branches = []
    for number, (rows, columns) in enumerate(_ESTATE_SECTIONS.values()):
        source = {slot: name for name, slot in columns.items()}
        slots = {
            f"r_{slot}": F(source[slot]) if slot in source else Cast(Value(None), kind())
            for slot, kind in _ESTATE_SLOTS.items()
        }
        branches.append(
            rows(tenant)
            .order_by()
            .annotate(r_section=Value(number), **slots)
            .values_list("r_section", *slots)
        )
    first, *rest = branches
    estate: dict[str, list[dict]] = {name: [] for name in _ESTATE_SECTIONS}
    names = list(_ESTATE_SECTIONS)
    slot_index = {slot: index + 1 for index, slot in enumerate(_ESTATE_SLOTS)}
    for row in first.union(*rest, all=True).order_by("r_section", "r_s", "r_t1"):
        name = names[row[0]]
        columns = _ESTATE_SECTIONS[name][1]
        estate[name].append({key: row[slot_index[slot]] for key, slot in columns.items()})
    return estate


def sites_with_redundancy(*, tenant, site_ids) -> list[dict]:
    """Sites among ``site_ids`` with ``redundant``: whether a link with redundancy (active/passive
    or active/active) reaches them. One query."""
    redundant_links = Link.objects.filter(tenant=tenant).exclude(redundancy=Redundancy.NONE)
    reaches = redundant_links.filter(Q(site_a=OuterRef("pk")) | Q(site_b=OuterRef("pk")))
    return list(
        Site.objects.filter(tenant=tenant, pk__in=list(site_ids))
        .annotate(redundant=Exists(reaches))
        .order_by("code")
        .values("id", "code", "name", "redundant")
    )


def compute_currencies(*, tenant) -> dict[int, str]:
    """{compute id: the currency its cloud account bills in, "" without an account}. One query."""
    return {
        pk: currency or ""
        for pk, currency in ComputeResource.objects.filter(tenant=tenant)
        .order_by()
        .values_list("pk", "cloud_account__currency")
    }


def cloud_accounts_with_budget(*, tenant) -> list[dict]:
    """The tenant's cloud accounts that have a monthly budget, as rows."""
    return list(
        CloudAccount.objects.filter(tenant=tenant, monthly_budget__isnull=False)
        .order_by("provider", "account_id")
        .values("id", "provider", "account_id", "name", "monthly_budget", "currency")
    )


# --- Readiness gates (pilot → production): reads of many AI systems at once ---------------------
# Kept apart from the rest of this module; each runs one query whatever the number of systems.


def ai_systems_in_tenants(*, tenant_ids: list[int]) -> list[AISystem]:
    """Every AI system of ``tenant_ids`` with its tenant's name and slug, by tenant and name."""
    return list(
        AISystem.objects.filter(tenant_id__in=tenant_ids)
        .select_related("tenant")
        .only(
            "id",
            "name",
            "stage",
            "stage_changed_at",
            "risk_tier",
            "business_owner",
            "technical_owner",
            "fria_completed_at",
            "created_at",
            "tenant__id",
            "tenant__name",
            "tenant__slug",
        )
        .order_by("tenant__name", "name")
    )


def ai_system_datasets_for(*, ai_system_ids: list[int]) -> dict[int, list[dict]]:
    """{AI system id: [its datasets: id, name, provenance, residency_country]} (each once)."""
    rows = (
        AISystemDataset.objects.filter(ai_system_id__in=ai_system_ids)
        .order_by("ai_system_id", "dataset__name")
        .values(
            "ai_system_id",
            "dataset_id",
            "dataset__name",
            "dataset__provenance",
            "dataset__residency_country",
        )
    )
    found: dict[int, dict[int, dict]] = {}
    for row in rows:
        found.setdefault(row["ai_system_id"], {})[row["dataset_id"]] = {
            "id": row["dataset_id"],
            "name": row["dataset__name"],
            "provenance": row["dataset__provenance"],
            "residency_country": str(row["dataset__residency_country"] or ""),
        }
    return {system_id: list(datasets.values()) for system_id, datasets in found.items()}


def ai_system_deployments_for(*, ai_system_ids: list[int]) -> dict[int, list[dict]]:
    """{AI system id: [its deployments with what gates and alert rules read of them and of
    their compute: hostname, kind, cluster, GPU model, site code]}, by name."""
    rows = (
        Deployment.objects.filter(ai_system_id__in=ai_system_ids)
        .order_by("ai_system_id", "name")
        .values(
            "id",
            "name",
            "ai_system_id",
            "environment",
            "monitoring_enabled",
            "runbook_url",
            "compute_id",
            "compute__hostname",
            "compute__kind",
            "compute__cluster_id",
            "compute__gpu_model",
            "compute__site__code",
        )
    )
    found: dict[int, list[dict]] = {}
    for row in rows:
        found.setdefault(row["ai_system_id"], []).append(row)
    return found


def compute_cluster_nodes_for(*, cluster_ids: list[int]) -> dict[int, list[int]]:
    """{GPU cluster id: ids of its nodes} for the given clusters."""
    rows = (
        ComputeResource.objects.filter(cluster_id__in=cluster_ids)
        .order_by()
        .values_list("cluster_id", "id")
    )
    nodes: dict[int, list[int]] = {}
    for cluster_id, node_id in rows:
        nodes.setdefault(cluster_id, []).append(node_id)
    return nodes


# --- The fleet dashboard and the tenant 360 page -----------------------------------------------


def fleet_cloud_budgets(tenant_ids) -> dict[int, dict[str, Decimal]]:
    """{tenant id: {currency: the monthly budgets of its cloud accounts in that currency}}.
    Accounts without a budget are left out. One query."""
    rows = (
        CloudAccount.objects.unscoped()
        .filter(tenant_id__in=tenant_ids, monthly_budget__isnull=False)
        .order_by()
        .values_list("tenant_id", "currency")
        .annotate(budget=Sum("monthly_budget"))
    )
    budgets: dict[int, dict[str, Decimal]] = {}
    for tenant_id, currency, budget in rows:
        budgets.setdefault(tenant_id, {})[currency] = budget
    return budgets


def fleet_billed_compute_currencies(tenant_ids) -> dict[int, str]:
    """{compute id: the currency of the cloud account it is billed to} of the tenants' compute
    billed to a cloud account. One query."""
    return dict(
        ComputeResource.objects.unscoped()
        .filter(tenant_id__in=tenant_ids, cloud_account__isnull=False)
        .values_list("id", "cloud_account__currency")
    )


def estate_counts(*, tenant) -> dict[str, int]:
    """How many sites, compute resources (and GPUs in service), AI systems by stage,
    deployments and datasets the tenant has. Five queries."""
    compute = ComputeResource.objects.filter(tenant=tenant).aggregate(
        resources=Count("id"),
        gpus=Coalesce(Sum("gpu_count", filter=Q(status=ComputeStatus.ACTIVE)), 0),
    )
    systems = dict(
        AISystem.objects.filter(tenant=tenant)
        .order_by()
        .values_list("stage")
        .annotate(count=Count("id"))
    )
    return {
        "sites": Site.objects.filter(tenant=tenant).count(),
        "compute": compute["resources"],
        "gpus_in_service": compute["gpus"],
        "ai_systems": sum(systems.values()),
        "ai_systems_in_production": systems.get(Stage.PRODUCTION, 0),
        "ai_systems_in_pilot": systems.get(Stage.PILOT, 0),
        "deployments": Deployment.objects.filter(tenant=tenant).count(),
        "datasets": Dataset.objects.filter(tenant=tenant).count(),
    }


def gpu_compute_ids(*, tenant) -> list[int]:
    """The tenant's compute resources with GPUs, in service or not."""
    return list(
        ComputeResource.objects.filter(tenant=tenant, gpu_count__gt=0)
        .order_by("hostname")
        .values_list("id", flat=True)
    )


#: The AI system register's columns, in the order an auditor reads them.
AI_SYSTEM_REGISTER_FIELDS = (
    "id",
    "name",
    "purpose",
    "business_owner",
    "technical_owner",
    "stage",
    "stage_changed_at",
    "risk_tier",
    "risk_classified_at",
    "risk_reviewed_at",
    "annex_iii_area",
    "provenance",
    "vendor",
    "vendor_assessed_at",
    "model_name",
    "model_version",
    "personal_data",
    "human_oversight",
    "human_overseer",
    "user_facing",
    "generative",
    "ai_disclosure",
    "technical_documentation_url",
    "fria_required",
    "fria_completed_at",
    "eu_database_id",
)


def ai_system_register(*, tenant) -> list[dict]:
    """The tenant's AI system register as plain rows (``AI_SYSTEM_REGISTER_FIELDS``), by name.
    One query; call inside the tenant's scope."""
    return list(
        AISystem.objects.filter(tenant=tenant)
        .order_by("name", "id")
        .values(*AI_SYSTEM_REGISTER_FIELDS)
    )
