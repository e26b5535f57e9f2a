"""Telemetry reads: retention in force, resources by reference, series for charts, and the
per-resource statistics of a window (what alert rules judge).

Every selector takes ``tenant=`` and runs inside that tenant's scope (the fail-closed managers
raise otherwise); a resource of another tenant is simply not found.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from django.db.models import Avg, Count, F, FloatField, Max, Min, Sum
from django.db.models.functions import Cast, TruncDay
from django.utils import timezone

from operations.inventory import selectors as inventory
from operations.inventory.models import ComputeResource, Deployment
from operations.telemetry.metrics import (
    METRICS_BY_CODE,
    METRICS_BY_NAME,
    RESOURCE_KIND_NAMES,
    Metric,
    ResourceKind,
)
from operations.telemetry.models import (
    DEFAULT_RAW_RETENTION_DAYS,
    DEFAULT_ROLLUP_RETENTION_DAYS,
    TelemetryDirtyHour,
    TelemetryMonthlyCost,
    TelemetryPolicy,
    TelemetryRollup,
)
from operations.telemetry.storage import sample_store
from tenants.fleet import FleetCell
from tenants.scoping import all_tenants_scope

#: Raw points one series answer may hold; a wider request must use a rolled-up step.
MAX_RAW_POINTS = 10_000
STEPS = ("raw", "1h", "1d")


@dataclass(frozen=True)
class Retention:
    raw_days: int
    rollup_days: int


@dataclass(frozen=True)
class ResourceRef:
    kind: int
    id: int
    name: str

    def as_dict(self) -> dict:
        return {"kind": RESOURCE_KIND_NAMES[self.kind], "id": self.id, "name": self.name}


@dataclass(frozen=True)
class WindowStats:
    """One resource's samples of one metric over a window."""

    resource_id: int
    lowest: float
    highest: float
    samples: int
    first_at: dt.datetime
    last_at: dt.datetime


@dataclass(frozen=True)
class Series:
    resource: ResourceRef
    metric: Metric
    start: dt.datetime
    end: dt.datetime
    step: str
    points: list[dict]


def telemetry_policy_get(*, tenant) -> TelemetryPolicy:
    """The tenant's policy row, or an unsaved one carrying the defaults."""
    return TelemetryPolicy.objects.filter(tenant=tenant).first() or TelemetryPolicy(tenant=tenant)


def telemetry_retention_for(*, tenant) -> Retention:
    row = (
        TelemetryPolicy.objects.filter(tenant=tenant)
        .values_list("raw_retention_days", "rollup_retention_days")
        .first()
    )
    if row is None:
        return Retention(DEFAULT_RAW_RETENTION_DAYS, DEFAULT_ROLLUP_RETENTION_DAYS)
    return Retention(*row)


def telemetry_longest_raw_retention_days() -> int:
    """The longest raw retention any tenant has (the default for tenants without a policy)."""
    with all_tenants_scope() as tenant_ids:
        if not tenant_ids:
            return DEFAULT_RAW_RETENTION_DAYS
        longest = TelemetryPolicy.objects.aggregate(longest=Max("raw_retention_days"))["longest"]
    return max(DEFAULT_RAW_RETENTION_DAYS, longest or 0)


def telemetry_tenants_with_pending_rollups() -> list[int]:
    """Ids of the tenants with hours waiting to be rolled up (the fleet fan-out list)."""
    with all_tenants_scope() as tenant_ids:
        if not tenant_ids:
            return []
        pending = TelemetryDirtyHour.objects.order_by().values_list("tenant_id", flat=True)
        return sorted(set(pending.distinct()))


def telemetry_resource_get(
    *, tenant, kind: int, resource_id: int | None = None, name: str | None = None
) -> ResourceRef | None:
    """A compute resource (by id or hostname), deployment (by id or name) or GPU (by id,
    ``<hostname>/<index>[/<MIG instance>]`` or ``GPU-<uuid>``) of the tenant."""
    if kind == ResourceKind.GPU:
        references = set() if name is None else {name}
        ids = set() if resource_id is None else {resource_id}
        resolved, names = inventory.gpus_by_reference(tenant=tenant, references=references, ids=ids)
        pk = resource_id if resource_id is not None else resolved.get(name)
        return ResourceRef(kind, pk, names[pk]) if pk in names else None
    if kind == ResourceKind.COMPUTE:
        model, key = ComputeResource, "hostname"
    else:
        model, key = Deployment, "name"
    rows = model.objects.filter(tenant=tenant)
    rows = rows.filter(pk=resource_id) if resource_id is not None else rows.filter(**{key: name})
    found = rows.values_list("pk", key).first()
    return ResourceRef(kind, found[0], found[1]) if found else None


def telemetry_gpu_get(*, tenant, compute: ResourceRef, gpu: str) -> ResourceRef | None:
    """The GPU of ``compute`` that ``gpu`` names: its index (``3``), index and MIG instance
    (``3/7``) or its UUID; None when the node has no such GPU."""
    reference = gpu if inventory.gpu_reference_parse(gpu) == gpu else f"{compute.name}/{gpu}"
    resolved, names = inventory.gpus_by_reference(tenant=tenant, references={reference})
    pk = resolved.get(reference)
    if pk is None or not names[pk].startswith(f"{compute.name}/"):
        return None
    return ResourceRef(ResourceKind.GPU.value, pk, names[pk])


def _auto_step(start: dt.datetime, end: dt.datetime) -> str:
    span = end - start
    if span <= dt.timedelta(days=1):
        return "raw"
    if span <= dt.timedelta(days=31):
        return "1h"
    return "1d"


def _raw_points(*, tenant, resource: ResourceRef, metric: Metric, start, end) -> list[dict] | None:
    """Raw points in [start, end), or None when there are more than ``MAX_RAW_POINTS``."""
    rows = sample_store().series_points(
        tenant_id=tenant.id,
        kind=resource.kind,
        resource_id=resource.id,
        metric=metric.code,
        start=start,
        end=end,
        limit=MAX_RAW_POINTS + 1,
    )
    if len(rows) > MAX_RAW_POINTS:
        return None
    return [{"ts": ts, "value": value} for ts, value in rows]


def _rollups(*, tenant, resource: ResourceRef, metric: Metric, start, end):
    return TelemetryRollup.objects.filter(
        tenant=tenant,
        resource_kind=resource.kind,
        resource_id=resource.id,
        metric=metric.code,
        bucket__gte=start,
        bucket__lt=end,
    )


def _hourly_points(**kwargs) -> list[dict]:
    rows = (
        _rollups(**kwargs)
        .order_by("bucket")
        .values_list("bucket", "min_value", "max_value", "avg_value", "sample_count")
    )
    return [
        {"ts": ts, "min": low, "max": high, "avg": mean, "count": count}
        for ts, low, high, mean, count in rows
    ]


def _daily_points(**kwargs) -> list[dict]:
    rows = (
        _rollups(**kwargs)
        .annotate(day=TruncDay("bucket", tzinfo=dt.UTC))
        .order_by()
        .values("day")
        .annotate(
            low=Min("min_value"),
            high=Max("max_value"),
            weighted=Sum(F("avg_value") * Cast("sample_count", FloatField())),
            count=Sum("sample_count"),
        )
        .order_by("day")
    )
    return [
        {
            "ts": row["day"],
            "min": row["low"],
            "max": row["high"],
            "avg": row["weighted"] / row["count"] if row["count"] else None,
            "count": row["count"],
        }
        for row in rows
    ]


def telemetry_series(
    *,
    tenant,
    resource: ResourceRef,
    metric: Metric,
    start: dt.datetime,
    end: dt.datetime,
    step: str = "auto",
) -> Series | None:
    """Points of one series in [start, end): raw samples, or hourly / daily rollups.

    ``auto`` picks raw up to a day, hourly up to 31 days, daily beyond, and falls back to
    hourly when a day holds more than ``MAX_RAW_POINTS`` raw points. Hourly rollups include an
    hour once the rollup job has run after its samples arrived. Returns None when ``raw`` was
    asked for explicitly and the range holds too many points. At most two queries.
    """
    chosen = _auto_step(start, end) if step == "auto" else step
    window = {"tenant": tenant, "resource": resource, "metric": metric, "start": start, "end": end}
    if chosen == "raw":
        points = _raw_points(**window)
        if points is None:
            if step == "raw":
                return None
            chosen = "1h"
    if chosen == "1h":
        # Whole buckets: the hour that holds ``start`` is included.
        window["start"] = start.replace(minute=0, second=0, microsecond=0)
        points = _hourly_points(**window)
    elif chosen == "1d":
        window["start"] = start.replace(hour=0, minute=0, second=0, microsecond=0)
        points = _daily_points(**window)
    return Series(resource, metric, start, end, chosen, points)


def telemetry_window_stats(
    *, tenant, kind: int, metric: Metric, start: dt.datetime, end: dt.datetime, resources=None
) -> list[WindowStats]:
    """Lowest, highest, count, first and last sample of ``metric`` per resource of ``kind`` in
    [start, end] (both ends included), by resource id: one aggregate query over the raw samples.

    ``resources``: a QuerySet of the resource ids to read (run as a subquery); None reads all.
    """
    rows = sample_store().window_stats(
        tenant_id=tenant.id,
        kind=kind,
        metric=metric.code,
        start=start,
        end=end,
        resources=resources,
    )
    return [WindowStats(*row) for row in rows]


def telemetry_last_sample_times(
    *, tenant, series: list[tuple[int, int, Metric]], since: dt.datetime, until: dt.datetime
) -> dict[tuple[int, int, str], dt.datetime]:
    """{(resource kind, resource id, metric name): time of its last sample at or before
    ``until``} for each of ``series`` (kind, resource id, metric) with a sample in
    [since, until]; the others are left out. One query, its cost per series asked (not per
    sample stored): what silence alerts judge."""
    rows = sample_store().last_sample_times(
        tenant_id=tenant.id,
        series=[(kind, resource_id, metric.code) for kind, resource_id, metric in series],
        since=since,
        until=until,
    )
    return {
        (kind, resource_id, METRICS_BY_CODE[code].name): at for kind, resource_id, code, at in rows
    }


def telemetry_hourly_means(
    *, tenant, resource_kind: int, resource_ids: list[int], metric: Metric, start, end
) -> dict[int, list[tuple[dt.datetime, float, int]]]:
    """{resource id: [(hour, mean, sample count), ...] oldest first} from the hourly rollups of
    many resources; one query. Resources with no rollup in the window are left out."""
    rows = (
        TelemetryRollup.objects.filter(
            tenant=tenant,
            resource_kind=resource_kind,
            resource_id__in=resource_ids,
            metric=metric.code,
            bucket__gte=start,
            bucket__lt=end,
        )
        .order_by("resource_id", "bucket")
        .values_list("resource_id", "bucket", "avg_value", "sample_count")
    )
    series: dict[int, list[tuple[dt.datetime, float, int]]] = {}
    for resource_id, bucket, value, count in rows:
        series.setdefault(resource_id, []).append((bucket, value, count))
    return series


def telemetry_hourly_totals(
    *, tenant, resource_kind: int, resource_ids: list[int], metric: Metric, start, end
) -> dict[int, dict]:
    """{resource id: {"total", "hours", "first"}} over the hourly rollups in [start, end): the
    sum of the hourly means (for ``cost_per_hour``, what the hours cost), how many hours had
    data and the first of them. One query; resources without a rollup are left out."""
    rows = (
        TelemetryRollup.objects.filter(
            tenant=tenant,
            resource_kind=resource_kind,
            resource_id__in=resource_ids,
            metric=metric.code,
            bucket__gte=start,
            bucket__lt=end,
        )
        .order_by()
        .values("resource_id")
        .annotate(total=Sum("avg_value"), hours=Count("id"), first=Min("bucket"))
    )
    return {
        row["resource_id"]: {"total": row["total"], "hours": row["hours"], "first": row["first"]}
        for row in rows
    }


def telemetry_daily_totals(
    *, tenant, metric: Metric, start, end, tz: dt.tzinfo, resource_kind: int | None = None
) -> list[tuple[dt.datetime, float, int]]:
    """[(local midnight in ``tz``, Σ hourly means, hourly rollups counted)] per day over the
    hourly rollups of every resource (of ``resource_kind`` if given) in [start, end), oldest
    first. For ``cost_per_hour`` the total is the day's spend; divided by the count, a mean
    (GPU utilisation across the nodes). One query."""
    rows = TelemetryRollup.objects.filter(
        tenant=tenant, metric=metric.code, bucket__gte=start, bucket__lt=end
    )
    if resource_kind is not None:
        rows = rows.filter(resource_kind=resource_kind)
    rows = (
        rows.annotate(day=TruncDay("bucket", tzinfo=tz))
        .order_by()
        .values("day")
        .annotate(total=Sum("avg_value"), hours=Count("id"))
        .order_by("day")
    )
    return [(row["day"], row["total"], row["hours"]) for row in rows]


def telemetry_daily_totals_by_resource(
    *, tenant, metric: Metric, start, end, tz: dt.tzinfo, resource_kind: int
) -> list[tuple[dt.datetime, int, float]]:
    """[(local midnight in ``tz``, resource id, Σ hourly means)] per day and resource of
    ``resource_kind`` over the hourly rollups in [start, end), oldest first: a day's spend per
    resource for ``cost_per_hour``. One query."""
    rows = (
        TelemetryRollup.objects.filter(
            tenant=tenant,
            metric=metric.code,
            resource_kind=resource_kind,
            bucket__gte=start,
            bucket__lt=end,
        )
        .annotate(day=TruncDay("bucket", tzinfo=tz))
        .order_by()
        .values("day", "resource_id")
        .annotate(total=Sum("avg_value"))
        .order_by("day", "resource_id")
    )
    return [(row["day"], row["resource_id"], row["total"]) for row in rows]


def telemetry_reporting_since(*, tenant, since: dt.datetime) -> dict[str, set[int]]:
    """{"compute": ids, "deployment": ids}: the tenant's resources with a sample of any metric
    at or after ``since``. One query."""
    reporting: dict[str, set[int]] = {name: set() for name in RESOURCE_KIND_NAMES.values()}
    for kind, resource_id in sample_store().resources_reporting(tenant_id=tenant.id, since=since):
        reporting[RESOURCE_KIND_NAMES[kind]].add(resource_id)
    return reporting


def telemetry_gpu_utilisation_hourly(
    *, tenant, compute_ids: list[int], start, end
) -> dict[int, list[float]]:
    """{compute id: hourly mean GPU utilisation (%), oldest first} over [start, end), from the
    hourly rollups. One query."""
    series = telemetry_hourly_means(
        tenant=tenant,
        resource_kind=ResourceKind.COMPUTE,
        resource_ids=compute_ids,
        metric=METRICS_BY_NAME["gpu_utilization"],
        start=start,
        end=end,
    )
    return {
        resource_id: [mean for _hour, mean, _count in rows] for resource_id, rows in series.items()
    }


def telemetry_gpu_utilisation_series(
    *, tenant, compute_id: int, start, end
) -> list[tuple[dt.datetime, float]]:
    """[(hour, mean GPU utilisation %)] of one compute resource over [start, end), from the
    hourly rollups. One query."""
    series = telemetry_hourly_means(
        tenant=tenant,
        resource_kind=ResourceKind.COMPUTE,
        resource_ids=[compute_id],
        metric=METRICS_BY_NAME["gpu_utilization"],
        start=start,
        end=end,
    )
    return [(hour, mean) for hour, mean, _count in series.get(compute_id, [])]


def telemetry_compute_cost(*, tenant, compute_ids: list[int], start, end) -> dict[int, dict]:
    """{compute id: {"total", "hours", "first"}}: what each resource cost in [start, end) by its
    ``cost_per_hour`` rollups (``telemetry_hourly_totals``). One query."""
    return telemetry_hourly_totals(
        tenant=tenant,
        resource_kind=ResourceKind.COMPUTE,
        resource_ids=compute_ids,
        metric=METRICS_BY_NAME["cost_per_hour"],
        start=start,
        end=end,
    )


# --- Readiness gates (pilot → production): reads for many resources at once ---------------------


def telemetry_hourly_mean_values(
    *,
    tenant_ids: list[int],
    resource_kind: int,
    resource_ids: list[int],
    metric: Metric,
    start,
    end,
) -> dict[int, list[float]]:
    """{resource id: its hourly means of ``metric`` in [start, end)} from the rollups of
    resources in ``tenant_ids``; one query. Resources with no rollup in the window are left out."""
    rows = (
        TelemetryRollup.objects.filter(
            tenant_id__in=tenant_ids,
            resource_kind=resource_kind,
            resource_id__in=resource_ids,
            metric=metric.code,
            bucket__gte=start,
            bucket__lt=end,
        )
        .order_by()
        .values_list("resource_id", "avg_value")
    )
    values: dict[int, list[float]] = {}
    for resource_id, value in rows:
        values.setdefault(resource_id, []).append(value)
    return values


# --- The fleet dashboard (every tenant id of the page at once, in its scope) -------------------


def fleet_gpu_utilisation(tenant_ids, *, now: dt.datetime | None = None) -> dict[int, FleetCell]:
    """Each tenant's mean GPU utilisation over the last 24 hours, from the hourly rollups of its
    compute resources. One query."""
    now = now or timezone.now()
    rows = (
        TelemetryRollup.objects.unscoped()
        .filter(
            tenant_id__in=tenant_ids,
            resource_kind=ResourceKind.COMPUTE,
            metric=METRICS_BY_NAME["gpu_utilization"].code,
            bucket__gte=now - dt.timedelta(hours=24),
            bucket__lt=now,
        )
        .order_by()
        .values("tenant_id")
        .annotate(mean=Avg("avg_value"), resources=Count("resource_id", distinct=True))
    )
    cells = {}
    for row in rows:
        mean = row["mean"]
        cells[row["tenant_id"]] = FleetCell(
            text=f"{mean:.0f} %",
            value=mean,
            # Saturated GPUs are a capacity risk; idle ones show as open savings instead.
            attention=5 if mean >= 90 else 0,
            tone="warn" if mean >= 90 or mean < 15 else "",
            link="estate/",
            detail=f"{row['resources']} resource{'s' if row['resources'] != 1 else ''}",
        )
    return cells


def fleet_gpu_utilisation_total(cells: dict[int, FleetCell]) -> FleetCell:
    values = [cell.value for cell in cells.values() if cell.value is not None]
    if not values:
        return FleetCell(text="—")
    mean = sum(values) / len(values)
    return FleetCell(text=f"{mean:.0f} %", value=mean, detail=f"mean of {len(values)}")


def _money(amount: float, currency: str) -> str:
    # A no-break space: an amount never wraps away from its currency.
    return f"{amount:,.0f}\u00a0{currency}".strip()


def fleet_spend_this_month(tenant_ids, *, now: dt.datetime | None = None) -> dict[int, FleetCell]:
    """Each tenant's cloud spend this month (the month's cost of the compute billed to its cloud
    accounts, as the rollup job keeps it in ``TelemetryMonthlyCost``) against those accounts'
    monthly budgets, with the month-end projection at this month's pace. Three queries, none
    over the hourly rollups."""
    now = (now or timezone.now()).astimezone(dt.UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month_hours = calendar.monthrange(now.year, now.month)[1] * 24
    elapsed_hours = max((now - month_start).total_seconds() / 3600, 1)
    budgets = inventory.fleet_cloud_budgets(tenant_ids)
    billed = inventory.fleet_billed_compute_currencies(tenant_ids)
    # Summed here rather than joined in SQL: a join against the 1,000-tenant scope is one bad
    # plan away (stale statistics) from a nested loop that never ends.
    spent: dict[int, dict[str, float]] = {}
    for tenant_id, resource_id, cost in (
        TelemetryMonthlyCost.objects.unscoped()
        .filter(
            tenant_id__in=tenant_ids, month=month_start.date(), resource_kind=ResourceKind.COMPUTE
        )
        .order_by()
        .values_list("tenant_id", "resource_id", "cost")
    ):
        currency = billed.get(resource_id)
        if currency is not None:
            by_currency = spent.setdefault(tenant_id, {})
            by_currency[currency] = by_currency.get(currency, 0.0) + cost
    cells = {}
    for tenant_id in set(budgets) | set(spent):
        by_currency = spent.get(tenant_id, {})
        limits = {
            currency: float(budget)
            for currency, budget in budgets.get(tenant_id, {}).items()
            if budget
        }
        total = sum(by_currency.values())
        parts = tuple(
            (currency, by_currency.get(currency, 0.0))
            for currency in sorted(set(by_currency) | set(limits))
        )
        text = " · ".join(_money(amount, currency) for currency, amount in parts)
        if not limits:
            cells[tenant_id] = FleetCell(
                text=text, value=total, link="estate/", detail="no budget", parts=parts
            )
            continue
        # Each currency against its own budget: amounts in different currencies never add up.
        projected = max(
            100 * by_currency.get(currency, 0.0) * month_hours / elapsed_hours / limit
            for currency, limit in limits.items()
        )
        cells[tenant_id] = FleetCell(
            text=text,
            value=total,
            attention=10
            if projected > 110
            else 6
            if projected > 100
            else 2
            if projected > 90
            else 0,
            tone="bad" if projected > 100 else "warn" if projected > 90 else "ok",
            link="estate/",
            parts=parts,
            detail=(
                "of "
                + " · ".join(_money(limit, currency) for currency, limit in sorted(limits.items()))
                + f" · {projected:.0f} % projected"
            ),
        )
    return cells


def fleet_spend_total(cells: dict[int, FleetCell]) -> FleetCell:
    """The fleet's spend this month, currency by currency (amounts in different currencies are
    never added up)."""
    by_currency: dict[str, float] = {}
    for cell in cells.values():
        for currency, amount in cell.parts:
            by_currency[currency] = by_currency.get(currency, 0.0) + amount
    if not by_currency:
        return FleetCell(text="—")
    return FleetCell(
        text=" · ".join(
            _money(amount, currency) for currency, amount in sorted(by_currency.items())
        ),
        value=sum(by_currency.values()) if len(by_currency) == 1 else None,
        attention=sum(cell.attention for cell in cells.values()),
        parts=tuple(sorted(by_currency.items())),
    )


def telemetry_gpu_utilisation_by_hour(
    *, tenant, start, end
) -> list[tuple[dt.datetime, float, float]]:
    """[(hour, mean, peak)] GPU utilisation (%) across all the tenant's compute resources over
    [start, end), oldest first, from the hourly rollups. One query."""
    return list(
        TelemetryRollup.objects.filter(
            tenant=tenant,
            resource_kind=ResourceKind.COMPUTE,
            metric=METRICS_BY_NAME["gpu_utilization"].code,
            bucket__gte=start,
            bucket__lt=end,
        )
        .order_by("bucket")
        .values("bucket")
        .annotate(mean=Avg("avg_value"), peak=Max("max_value"))
        .values_list("bucket", "mean", "peak")
    )
