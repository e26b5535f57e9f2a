"""Reads of the inventory: the joins each list needs (one query per list, whatever its length)
and the whole estate of a tenant for export. Call inside the tenant's scope."""

from __future__ import annotations

import datetime as dt
import decimal
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import (
    Count,
    Exists,
    Model,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce

from operations.inventory.models import (
    GPU_UUID,
    AISystem,
    AISystemDataset,
    CloudAccount,
    ComputeKind,
    ComputeResource,
    ComputeStatus,
    Dataset,
    Deployment,
    Environment,
    GpuDevice,
    Link,
    Redundancy,
    Site,
    Stage,
)
from tenants.scoping import TenantScopeMissing, active_scope


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


#: A GPU's place: (compute resource id, dcgm-exporter's gpu index, MIG GPU instance id or "").
GpuKey = tuple[int, int, str]
_GPU_BEARING = Q(gpu_count__gt=0) | Q(kind__in=[ComputeKind.GPU_NODE, ComputeKind.GPU_CLUSTER])


@dataclass
class GpuFleetIndex:
    """The compute resources a scrape names and their GPUs, for mapping its series.

    ``gpus`` maps a GPU's place to (GpuDevice id, UUID, last_seen_at).
    """

    by_host: dict[str, int] = field(default_factory=dict)
    by_uuid: dict[str, int] = field(default_factory=dict)
    gpus: dict[GpuKey, tuple[int, str, dt.datetime | None]] = field(default_factory=dict)

    def add(self, rows, hostnames: set[str], uuids: set[str]) -> None:
        for pk, hostname, gpu_uuids, gpu_id, index, mig, gpu_uuid, last_seen in rows:
            if hostname in hostnames:
                self.by_host[hostname] = pk
            for listed in gpu_uuids or ():
                if isinstance(listed, str) and listed in uuids:
                    self.by_uuid.setdefault(listed, pk)
            if gpu_id is not None:
                self.gpus[(pk, index, mig)] = (gpu_id, gpu_uuid, last_seen)
                if gpu_uuid in uuids:
                    self.by_uuid.setdefault(gpu_uuid, pk)


_FLEET_COLUMNS = (
    "pk",
    "hostname",
    "gpu_uuids",
    "gpus__id",
    "gpus__index",
    "gpus__mig_instance",
    "gpus__uuid",
    "gpus__last_seen_at",
)


def gpu_fleet_index(*, tenant, names: set[tuple[str, str]]) -> GpuFleetIndex:
    """The tenant's compute resources named by the (hostname, GPU UUID) pairs of a scrape,
    with all their GPUs, in one query: by hostname, else by the UUID of a known GPU.

    A UUID known only from ``ComputeResource.gpu_uuids`` (a node entered with its UUIDs under
    another name, whose GPUs were never seen) costs one more query, only while some series'
    host is still unknown; once seen, its GPUs are GpuDevices and the first query finds them.
    """
    fleet = GpuFleetIndex()
    hostnames = {hostname for hostname, _uuid in names if hostname}
    uuids = {gpu_uuid for _host, gpu_uuid in names if gpu_uuid}
    if not hostnames and not uuids:
        return fleet
    computes = ComputeResource.objects.filter(tenant=tenant).order_by()
    known = GpuDevice.objects.filter(tenant=tenant, uuid__in=uuids).values("compute_id")
    named = computes.filter(Q(hostname__in=hostnames) | Q(pk__in=known))
    fleet.add(named.values_list(*_FLEET_COLUMNS), hostnames, uuids)
    unknown = {
        gpu_uuid
        for hostname, gpu_uuid in names
        if gpu_uuid and hostname not in fleet.by_host and gpu_uuid not in fleet.by_uuid
    }
    if unknown:
        # Matched on the JSON list here (portable); only GPU-bearing rows not loaded yet.
        loaded = set(fleet.by_host.values()) | set(fleet.by_uuid.values())
        others = computes.filter(_GPU_BEARING).exclude(pk__in=loaded)
        rows = [row for row in others.values_list(*_FLEET_COLUMNS) if set(row[2] or ()) & unknown]
        fleet.add(rows, set(), unknown)
    return fleet


# Every row version of the tenant's compute resources and GPUs (row id and the transaction that
# wrote it): any insert, update or delete since changes it. Raw SQL filters on the tenant itself.
_FLEET_VERSION = """
    SELECT md5(COALESCE(string_agg(v, ',' ORDER BY v), '')) FROM (
        SELECT 'c' || id || ':' || xmin AS v FROM {computes} WHERE tenant_id = %(tenant)s
        UNION ALL
        SELECT 'g' || id || ':' || xmin FROM {gpus} WHERE tenant_id = %(tenant)s
    ) AS rows
"""


def gpu_fleet_version(*, tenant) -> str | None:
    """A fingerprint of the tenant's compute resources and GPUs that changes with any write to
    them (PostgreSQL: from each row's id and ``xmin``), so a ``gpu_fleet_index`` kept under it
    is still exact; None where the database cannot tell (SQLite: do not keep one)."""
    if connection.vendor != "postgresql":
        return None
    sql = _FLEET_VERSION.format(
        computes=ComputeResource._meta.db_table, gpus=GpuDevice._meta.db_table
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {"tenant": tenant.id})
        return cursor.fetchone()[0]


def gpu_key_problem(key: GpuKey, labels: dict) -> str | None:
    """What keeps a scrape's GPU labels from naming a GpuDevice (None when they can)."""
    _compute, index, mig = key
    if not 0 <= index <= 32767:
        return "The gpu label must be a GPU index (a whole number from 0 to 32767)."
    gpu_uuid = labels.get("UUID", "")
    if gpu_uuid and not GPU_UUID.match(gpu_uuid):
        return "The UUID label is not a GPU UUID (GPU-<uuid> or MIG-<uuid>)."
    for label, model_field in (
        ("GPU_I_ID", "mig_instance"),
        ("GPU_I_PROFILE", "mig_profile"),
        ("modelName", "model_name"),
    ):
        limit = GpuDevice._meta.get_field(model_field).max_length
        if len(labels.get(label, "")) > limit:
            return f"The {label} label is longer than {limit} characters."
    return None


def gpu_name(hostname: str, index: int, mig_instance: str = "") -> str:
    """A GPU's natural name: ``<hostname>/<index>``, ``<hostname>/<index>/<MIG instance>``."""
    return f"{hostname}/{index}/{mig_instance}" if mig_instance else f"{hostname}/{index}"


def gpu_reference_parse(text: str) -> tuple[str, int, str] | str | None:
    """(hostname, index, MIG instance) of ``<hostname>/<index>[/<GPU_I_ID>]``, the UUID
    itself for ``GPU-<uuid>`` (a whole GPU), or None when it names no GPU."""
    if GPU_UUID.match(text):
        return text
    parts = text.split("/")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1].isdigit() or len(parts[1]) > 5:
        return None
    mig = parts[2] if len(parts) == 3 else ""
    if len(parts) == 3 and not mig:
        return None
    return parts[0], int(parts[1]), mig


def gpus_by_reference(
    *, tenant, references: set[str] = frozenset(), ids: set[int] = frozenset()
) -> tuple[dict[str, int], dict[int, str]]:
    """(reference → GpuDevice id, id → natural name) for the tenant's GPUs named by
    ``gpu_reference_parse`` references or by id, in one query."""
    parsed = {ref: gpu_reference_parse(ref) for ref in references}
    parsed = {ref: key for ref, key in parsed.items() if key is not None}
    hostnames = {key[0] for key in parsed.values() if isinstance(key, tuple)}
    uuids = {key for key in parsed.values() if isinstance(key, str)}
    if not hostnames and not uuids and not ids:
        return {}, {}
    found = GpuDevice.objects.filter(tenant=tenant).filter(
        Q(compute__hostname__in=hostnames) | Q(uuid__in=uuids) | Q(pk__in=ids)
    )
    by_key, by_uuid, names = {}, {}, {}
    columns = ("pk", "compute__hostname", "index", "mig_instance", "uuid")
    for pk, hostname, index, mig, gpu_uuid in found.values_list(*columns):
        by_key[(hostname, index, mig)] = pk
        if gpu_uuid and not mig:
            by_uuid[gpu_uuid] = pk
        names[pk] = gpu_name(hostname, index, mig)
    resolved = {}
    for ref, key in parsed.items():
        pk = by_uuid.get(key) if isinstance(key, str) else by_key.get(key)
        if pk is not None:
            resolved[ref] = pk
    return resolved, {
        pk: name for pk, name in names.items() if pk in ids or pk in resolved.values()
    }


def gpus_with_compute(queryset: QuerySet[GpuDevice]) -> QuerySet[GpuDevice]:
    return queryset.select_related("compute")


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


def compute_gpus_for_page(*, tenant, compute_id: int) -> list[GpuDevice]:
    """The GPUs (and MIG instances) of one compute resource of the tenant, by index. One query."""
    return list(
        GpuDevice.objects.filter(tenant=tenant, compute_id=compute_id).order_by(
            "index", "mig_instance", "id"
        )
    )


def compute_gpu_ids_query(*, tenant, compute_id: int) -> QuerySet:
    """The ids of one compute resource's GPUs, as a query to read telemetry for (a subquery)."""
    return GpuDevice.objects.filter(tenant=tenant, compute_id=compute_id).values("pk")


# --- Figures for the readiness signals (a fixed number of queries, whatever the estate's size) ----

#: Per section of ``readiness_estate_rows``: its rows (FROM … WHERE, the tenant id its one
#: parameter) and {row key: (slot in the union, SQL)}. "s" then "t1" order a section's rows.
_ESTATE_SECTIONS = {
    # The compute that is not retired: cluster, site, cloud account (and its currency),
    # GPU count and hourly cost.
    "compute": (
        '{compute} r LEFT JOIN {cloud_account} ca ON ca."id" = r."cloud_account_id" '
        f'WHERE r."tenant_id" = %s AND r."status" <> \'{ComputeStatus.RETIRED.value}\'',
        {
            "id": ("id", 'r."id"'),
            "hostname": ("s", 'r."hostname"'),
            "kind": ("t1", 'r."kind"'),
            "status": ("t2", 'r."status"'),
            "cloud_account__currency": ("t3", 'ca."currency"'),
            "cluster_id": ("i1", 'r."cluster_id"'),
            "site_id": ("i2", 'r."site_id"'),
            "cloud_account_id": ("i3", 'r."cloud_account_id"'),
            "gpu_count": ("i4", 'r."gpu_count"'),
            "hourly_cost": ("d1", 'r."hourly_cost"'),
        },
    ),
    # Production deployments with what operating one needs and where it runs.
    "production": (
        '{deployment} r LEFT JOIN {compute} c ON c."id" = r."compute_id" '
        f'WHERE r."tenant_id" = %s AND r."environment" = \'{Environment.PRODUCTION.value}\'',
        {
            "id": ("id", 'r."id"'),
            "name": ("s", 'r."name"'),
            "runbook_url": ("t1", 'r."runbook_url"'),
            "compute__kind": ("t2", 'c."kind"'),
            "compute_id": ("i1", 'r."compute_id"'),
            "compute__site_id": ("i2", 'c."site_id"'),
            "monitoring_enabled": ("b1", 'r."monitoring_enabled"'),
        },
    ),
    # Datasets with the metadata readiness asks of them.
    "datasets": (
        '{dataset} r WHERE r."tenant_id" = %s',
        {
            "id": ("id", 'r."id"'),
            "name": ("s", 'r."name"'),
            "owner": ("t1", 'r."owner"'),
            "classification": ("t2", 'r."classification"'),
            "residency_country": ("t3", 'r."residency_country"'),
            "provenance": ("t4", 'r."provenance"'),
            "licence": ("t5", 'r."licence"'),
            "personal_data": ("b1", 'r."personal_data"'),
        },
    ),
    # AI systems that are not retired: stage, risk tier, FRIA, owners.
    "ai_systems": (
        f'{{ai_system}} r WHERE r."tenant_id" = %s AND r."stage" <> \'{Stage.RETIRED.value}\'',
        {
            "id": ("id", 'r."id"'),
            "name": ("s", 'r."name"'),
            "stage": ("t1", 'r."stage"'),
            "risk_tier": ("t2", 'r."risk_tier"'),
            "business_owner": ("t3", 'r."business_owner"'),
            "technical_owner": ("t4", 'r."technical_owner"'),
            "fria_required": ("b1", 'r."fria_required"'),
            "fria_completed_at": ("dt1", 'r."fria_completed_at"'),
        },
    ),
    # Cloud accounts that have a monthly budget, by provider and account id.
    "cloud_accounts": (
        '{cloud_account} r WHERE r."tenant_id" = %s AND r."monthly_budget" IS NOT NULL',
        {
            "id": ("id", 'r."id"'),
            "provider": ("s", 'r."provider"'),
            "account_id": ("t1", 'r."account_id"'),
            "name": ("t2", 'r."name"'),
            "currency": ("t3", 'r."currency"'),
            "monthly_budget": ("d1", 'r."monthly_budget"'),
        },
    ),
}

#: The union's columns, each with the SQL type of a NULL filler (PostgreSQL resolves a union's
#: types pair by pair: an untyped NULL in the first two branches would become text).
_ESTATE_SLOTS = {
    "id": "bigint",
    "s": "varchar",
    "t1": "varchar",
    "t2": "varchar",
    "t3": "varchar",
    "t4": "varchar",
    "t5": "varchar",
    "i1": "bigint",
    "i2": "bigint",
    "i3": "bigint",
    "i4": "bigint",
    "b1": "boolean",
    "d1": "numeric",
    "dt1": "date",
}

#: What the union's decimals are read as (SQLite hands back floats): the compute's hourly cost.
_ESTATE_DECIMAL = ComputeResource._meta.get_field("hourly_cost")


@functools.cache
def _estate_union_sql() -> str:
    """The union as plain SQL, built once per process: compiling it through the ORM on every
    call cost a fleet scan about 13 ms per tenant, a quarter of a rescore."""
    tables = {
        "compute": ComputeResource,
        "cloud_account": CloudAccount,
        "deployment": Deployment,
        "dataset": Dataset,
        "ai_system": AISystem,
    }
    quoted = {name: f'"{model._meta.db_table}"' for name, model in tables.items()}
    selects = []
    for number, (source, columns) in enumerate(_ESTATE_SECTIONS.values()):
        sql_of = dict(columns.values())
        slots = ", ".join(
            f'{sql_of.get(slot, f"CAST(NULL AS {kind})")} AS "r_{slot}"'
            for slot, kind in _ESTATE_SLOTS.items()
        )
        source_sql = source.format(**quoted)
        selects.append(f'SELECT {number} AS "r_section", {slots} FROM {source_sql}')  # noqa: S608 - our tables
    return " UNION ALL ".join(selects) + " ORDER BY 1, 3, 4"


def _estate_value_readers(vendor: str) -> dict[str, Callable]:
    """{slot: how to read its raw value} where the driver's value is not the ORM's (SQLite)."""
    if vendor != "sqlite":
        return {}
    as_decimal = decimal.Context(prec=15).create_decimal_from_float
    places = decimal.Decimal(1).scaleb(-_ESTATE_DECIMAL.decimal_places)
    return {
        "b1": lambda value: value if value is None else bool(value),
        "d1": lambda value: (
            value
            if value is None
            else as_decimal(value).quantize(places, context=_ESTATE_DECIMAL.context)
        ),
        "dt1": lambda value: value if value is None else dt.date.fromisoformat(value),
    }


def readiness_estate_rows(*, tenant) -> dict[str, list[dict]]:
    """What the readiness signals read of the estate, in one query (a union, so one round trip
    per tenant in a fleet scan): {section: rows}, each section ordered by its name (cloud
    accounts by provider and account id). Sections: see ``_ESTATE_SECTIONS``.

    Plain SQL, so it filters by the tenant itself and refuses to run outside its scope, as the
    tenant-scoped manager would (row-level security applies underneath on PostgreSQL)."""
    scope = active_scope()
    if scope is None or tenant.id not in scope.tenant_ids:
        raise TenantScopeMissing(f"readiness_estate_rows(tenant={tenant.id}) outside its scope.")
    with connection.cursor() as cursor:
        cursor.execute(_estate_union_sql(), [tenant.id] * len(_ESTATE_SECTIONS))
        rows = cursor.fetchall()
    readers = _estate_value_readers(connection.vendor)
    names = list(_ESTATE_SECTIONS)
    slot_index = {slot: index + 1 for index, slot in enumerate(_ESTATE_SLOTS)}
    keys_of = [
        [(key, slot_index[slot], readers.get(slot)) for key, (slot, _) in columns.items()]
        for _, columns in _ESTATE_SECTIONS.values()
    ]
    estate: dict[str, list[dict]] = {name: [] for name in names}
    for row in rows:
        estate[names[row[0]]].append(
            {key: read(row[index]) if read else row[index] for key, index, read in keys_of[row[0]]}
        )
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
