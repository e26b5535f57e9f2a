"""The detectors: set-based reads over a tenant's hourly rollups and inventory.

``scan_inputs`` loads everything one scan needs in a fixed handful of queries (compute, the
deployments, per-node and per-GPU window figures, the GPUs that have them, hourly pool
utilisation, daily spend per resource), whatever the size of the estate; each detector is then a
pure function of those inputs and the thresholds, returning ``Finding`` objects keyed by
(kind, subject). Nothing here writes.

Every query filters on the tenant explicitly and runs in its scope (the fail-closed managers,
and row-level security on PostgreSQL, refuse anything else).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    F,
    FloatField,
    Max,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, TruncDay

from operations.inventory.models import (
    ComputeKind,
    ComputeResource,
    ComputeStatus,
    Deployment,
    GpuDevice,
    Stage,
)
from operations.optimisation.conf import HOURS_PER_MONTH, Thresholds
from operations.optimisation.models import RecommendationKind, SubjectType
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.models import TelemetryRollup

UTILISATION = METRICS_BY_NAME["gpu_utilization"].code
MEMORY_USED = METRICS_BY_NAME["gpu_memory_used_mib"].code
COST = METRICS_BY_NAME["cost_per_hour"].code
COMPUTE = ResourceKind.COMPUTE.value
DEPLOYMENT = ResourceKind.DEPLOYMENT.value
GPU = ResourceKind.GPU.value
TENANT_KEY = "tenant"
CENT = Decimal("0.01")


@dataclass
class Finding:
    kind: str
    subject_type: str
    subject_id: int | None
    subject_label: str
    title: str
    evidence: dict
    saving: Decimal = Decimal("0.00")
    currency: str = "USD"

    @property
    def subject_key(self) -> str:
        if self.subject_type == SubjectType.TENANT:
            return TENANT_KEY
        return f"{self.subject_type}:{self.subject_id}"

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.subject_key)


@dataclass
class NodeWindow:
    """A node's figures over the idle / right-size window (hourly means)."""

    utilisation_mean: float | None = None
    utilisation_peak: float | None = None
    utilisation_hours: int = 0
    memory_mean: float | None = None
    memory_peak: float | None = None
    memory_hours: int = 0


@dataclass
class ScanInputs:
    tenant_id: int
    as_of: dt.datetime
    window_start: dt.datetime
    window_end: dt.datetime
    compute: dict[int, dict]
    deployments: list[dict]
    node_window: dict[int, NodeWindow]
    #: pool (cluster id, or 0 for standalone nodes) -> hour -> (Σ utilisation × GPUs, Σ GPUs)
    pool_hours: dict[int, dict[dt.datetime, tuple[float, float]]]
    #: (resource kind, resource id) -> day -> spend (Σ hourly mean cost)
    spend: dict[tuple[int, int], dict[dt.date, float]] = field(default_factory=dict)
    #: A GPU's figures over the window from its own series (GPU id -> window)
    gpu_window: dict[int, NodeWindow] = field(default_factory=dict)
    #: The GPUs with per-GPU figures: id -> {id, compute_id, index, uuid, mig_instance}
    gpus: dict[int, dict] = field(default_factory=dict)


def money(value) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def monthly(hourly_cost, fraction: float = 1.0) -> Decimal:
    """hourly cost × 730 h × fraction, to the cent."""
    return money(Decimal(str(hourly_cost)) * HOURS_PER_MONTH * Decimal(str(round(fraction, 6))))


def _hour(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def _day_start(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


# --- Loading ------------------------------------------------------------------------------------


def _compute_rows(tenant) -> dict[int, dict]:
    rows = ComputeResource.objects.filter(tenant=tenant).values(
        "id",
        "hostname",
        "kind",
        "status",
        "cluster_id",
        "gpu_count",
        "gpu_memory_gb",
        "hourly_cost",
        "cloud_account__currency",
    )
    return {row["id"]: row for row in rows}


def _deployment_rows(tenant) -> list[dict]:
    return list(
        Deployment.objects.filter(tenant=tenant)
        .order_by("name")
        .values("id", "name", "compute_id", "ai_system_id", "ai_system__name", "ai_system__stage")
    )


def _rollups(tenant, metric_codes, start, end):
    return TelemetryRollup.objects.filter(
        tenant=tenant, metric__in=metric_codes, bucket__gte=start, bucket__lt=end
    ).order_by()


def _windows(tenant, start, end) -> tuple[dict[int, NodeWindow], dict[int, NodeWindow]]:
    """(each node's window figures from its aggregate series, each GPU's from its own), in
    one query."""
    rows = (
        _rollups(tenant, [UTILISATION, MEMORY_USED], start, end)
        .filter(resource_kind__in=[COMPUTE, GPU])
        .values("resource_kind", "resource_id", "metric")
        .annotate(
            weighted=Sum(F("avg_value") * Cast("sample_count", FloatField())),
            samples=Sum("sample_count"),
            peak=Max("avg_value"),
            hours=Count("id"),
        )
    )
    found: dict[int, dict[int, NodeWindow]] = {
        COMPUTE: defaultdict(NodeWindow),
        GPU: defaultdict(NodeWindow),
    }
    for row in rows:
        mean = row["weighted"] / row["samples"] if row["samples"] else None
        window = found[row["resource_kind"]][row["resource_id"]]
        if row["metric"] == UTILISATION:
            window.utilisation_mean, window.utilisation_peak = mean, row["peak"]
            window.utilisation_hours = row["hours"]
        else:
            window.memory_mean, window.memory_peak = mean, row["peak"]
            window.memory_hours = row["hours"]
    return dict(found[COMPUTE]), dict(found[GPU])


def _gpu_rows(tenant, gpu_ids) -> dict[int, dict]:
    """The GPUs that have per-GPU figures (no query when none has)."""
    if not gpu_ids:
        return {}
    rows = GpuDevice.objects.filter(tenant=tenant, pk__in=list(gpu_ids)).values(
        "id", "compute_id", "index", "uuid", "mig_instance"
    )
    return {row["id"]: row for row in rows}


def _gpu_nodes(compute: dict[int, dict]) -> list[dict]:
    return [
        row
        for row in compute.values()
        if row["kind"] == ComputeKind.GPU_NODE
        and row["status"] == ComputeStatus.ACTIVE
        and row["gpu_count"] > 0
    ]


def _pool_hours(tenant, compute, start, end) -> dict[int, dict[dt.datetime, tuple[float, float]]]:
    """GPU-weighted utilisation per pool and hour, summed in the database (one query)."""
    nodes = _gpu_nodes(compute)
    if not nodes:
        return {}
    weight = Case(
        *[When(resource_id=node["id"], then=Value(float(node["gpu_count"]))) for node in nodes],
        default=Value(0.0),
        output_field=FloatField(),
    )
    pool = Case(
        *[
            When(resource_id=node["id"], then=Value(node["cluster_id"]))
            for node in nodes
            if node["cluster_id"]
        ],
        default=Value(0),
        output_field=BigIntegerField(),
    )
    rows = (
        _rollups(tenant, [UTILISATION], start, end)
        .filter(resource_kind=COMPUTE, resource_id__in=[node["id"] for node in nodes])
        .annotate(weight=weight, pool=pool)
        .values("pool", "bucket")
        .annotate(weighted=Sum(F("avg_value") * F("weight")), gpus=Sum("weight"))
    )
    pools: dict[int, dict[dt.datetime, tuple[float, float]]] = defaultdict(dict)
    for row in rows:
        pools[row["pool"]][_hour(row["bucket"])] = (row["weighted"], row["gpus"])
    return dict(pools)


def _spend(tenant, start, end) -> dict[tuple[int, int], dict[dt.date, float]]:
    rows = (
        _rollups(tenant, [COST], start, end)
        .annotate(day=TruncDay("bucket", tzinfo=dt.UTC))
        .values("resource_kind", "resource_id", "day")
        .annotate(spend=Sum("avg_value"))
    )
    spend: dict[tuple[int, int], dict[dt.date, float]] = defaultdict(dict)
    for row in rows:
        day = row["day"].astimezone(dt.UTC).date() if row["day"] else None
        if day is not None:
            spend[(row["resource_kind"], row["resource_id"])][day] = row["spend"]
    return dict(spend)


def scan_inputs(*, tenant, as_of: dt.datetime, thresholds: Thresholds) -> ScanInputs:
    """Everything the detectors read, in five queries (six when GPUs report their own series)."""
    end = _hour(as_of)
    window_start = end - dt.timedelta(hours=thresholds.window_hours)
    compute = _compute_rows(tenant)
    node_window, gpu_window = _windows(tenant, window_start, end)
    today = _day_start(as_of)
    forecast_start = today - dt.timedelta(days=thresholds.forecast_days)
    history_start = today - dt.timedelta(days=thresholds.anomaly_history_days + 1)
    return ScanInputs(
        tenant_id=tenant.id,
        as_of=as_of,
        window_start=window_start,
        window_end=end,
        compute=compute,
        deployments=_deployment_rows(tenant),
        node_window=node_window,
        pool_hours=_pool_hours(tenant, compute, forecast_start, end),
        # Whole days only: today is still being spent.
        spend=_spend(tenant, min(history_start, window_start), today),
        gpu_window=gpu_window,
        gpus=_gpu_rows(tenant, gpu_window),
    )


# --- Detectors ----------------------------------------------------------------------------------


def tenant_currency(inputs: ScanInputs, thresholds: Thresholds) -> str:
    """The currency most of the tenant's cloud accounts bill in (else the default): used for
    tenant-wide findings and for compute without a cloud account (on-premises, colocation)."""
    found = Counter(
        row["cloud_account__currency"]
        for row in inputs.compute.values()
        if row.get("cloud_account__currency")
    )
    return found.most_common(1)[0][0] if found else thresholds.currency


def _currency(row: dict, inputs: ScanInputs, thresholds: Thresholds) -> str:
    return row.get("cloud_account__currency") or tenant_currency(inputs, thresholds)


def _window_evidence(inputs: ScanInputs) -> dict:
    return {
        "from": inputs.window_start.isoformat(),
        "to": inputs.window_end.isoformat(),
        "hours": int((inputs.window_end - inputs.window_start).total_seconds() // 3600),
    }


def _covered(window: NodeWindow | None, hours: int, thresholds: Thresholds) -> bool:
    return window is not None and window.utilisation_hours >= thresholds.min_coverage * hours


def detect_idle_gpus(inputs: ScanInputs, thresholds: Thresholds) -> list[Finding]:
    """Active GPU nodes whose utilisation stayed under the idle threshold for the window."""
    findings = []
    hours = thresholds.window_hours
    for node in _gpu_nodes(inputs.compute):
        window = inputs.node_window.get(node["id"])
        if not _covered(window, hours, thresholds):
            continue
        if not (
            window.utilisation_mean < thresholds.idle_utilisation
            and window.utilisation_peak < thresholds.idle_peak
        ):
            continue
        saving = monthly(node["hourly_cost"])
        findings.append(
            Finding(
                kind=RecommendationKind.IDLE_GPU,
                subject_type=SubjectType.COMPUTE,
                subject_id=node["id"],
                subject_label=node["hostname"],
                title=(
                    f"{node['hostname']} is idle: {window.utilisation_mean:.1f}% mean GPU "
                    f"utilisation over {hours} h; release or power it down"
                ),
                evidence={
                    "window": _window_evidence(inputs),
                    "hours_with_data": window.utilisation_hours,
                    "utilisation_mean": _r(window.utilisation_mean),
                    "utilisation_peak_hour": _r(window.utilisation_peak),
                    "gpu_count": node["gpu_count"],
                    "hourly_cost": str(node["hourly_cost"]),
                    "fraction_saved": 1.0,
                    "saving_basis": "hourly cost × 730 h (the whole node)",
                    "thresholds": {
                        "idle_utilisation": thresholds.idle_utilisation,
                        "idle_peak": thresholds.idle_peak,
                        "min_coverage": thresholds.min_coverage,
                    },
                },
                saving=saving,
                currency=_currency(node, inputs, thresholds),
            )
        )
    return findings


def gpu_label(hostname: str, gpu: dict) -> str:
    """A GPU as findings name it: its node and index (and MIG instance)."""
    mig = f" MIG {gpu['mig_instance']}" if gpu["mig_instance"] else ""
    return f"{hostname} GPU {gpu['index']}{mig}"


def detect_idle_gpus_on_busy_nodes(
    inputs: ScanInputs, thresholds: Thresholds, *, right_sized: set[int]
) -> list[Finding]:
    """Single GPUs idle over the window (their own series) while the other GPUs of their active
    node are busy: work is not reaching them (a scheduler constraint, a stuck device, a node
    larger than its jobs). A node that is idle as a whole, or that right-sizing already sheds
    GPUs from, is the other detectors' finding."""
    hours = thresholds.window_hours
    nodes = {node["id"]: node for node in _gpu_nodes(inputs.compute)}
    by_node: dict[int, list[tuple[dict, NodeWindow]]] = defaultdict(list)
    for gpu_id, window in inputs.gpu_window.items():
        gpu = inputs.gpus.get(gpu_id)
        if gpu is None or gpu["compute_id"] not in nodes:
            continue
        if _covered(window, hours, thresholds):
            by_node[gpu["compute_id"]].append((gpu, window))
    findings = []
    for node_id, gpus in sorted(by_node.items(), key=lambda item: nodes[item[0]]["hostname"]):
        node = nodes[node_id]
        if len(gpus) < 2 or node_id in right_sized:
            continue
        gpus.sort(key=lambda item: (item[0]["index"], item[0]["mig_instance"]))
        # A MIG instance is its share of one GPU.
        slices = Counter(gpu["index"] for gpu, _window in gpus)
        for gpu, window in gpus:
            if not (
                window.utilisation_mean < thresholds.gpu_idle_utilisation
                and window.utilisation_peak < thresholds.gpu_idle_peak
            ):
                continue
            others = [(other, w) for other, w in gpus if other["id"] != gpu["id"]]
            busy = sum(w.utilisation_mean for _other, w in others) / len(others)
            if busy < thresholds.busy_node_utilisation:
                continue
            label = gpu_label(node["hostname"], gpu)
            fraction = 1 / (node["gpu_count"] * slices[gpu["index"]])
            findings.append(
                Finding(
                    kind=RecommendationKind.IDLE_GPU_ON_BUSY_NODE,
                    subject_type=SubjectType.GPU,
                    subject_id=gpu["id"],
                    subject_label=label,
                    title=(
                        f"{label} is idle ({window.utilisation_mean:.1f}% mean over {hours} h) "
                        f"while its {len(others)} other GPU{'s' if len(others) != 1 else ''} "
                        f"average {busy:.0f}%: schedule work on it or release it"
                    ),
                    evidence={
                        "window": _window_evidence(inputs),
                        "hours_with_data": window.utilisation_hours,
                        "utilisation_mean": _r(window.utilisation_mean),
                        "utilisation_peak_hour": _r(window.utilisation_peak),
                        "gpu": {
                            "id": gpu["id"],
                            "index": gpu["index"],
                            "uuid": gpu["uuid"],
                            "mig_instance": gpu["mig_instance"],
                        },
                        "compute": {"id": node_id, "hostname": node["hostname"]},
                        "other_gpus": [
                            {
                                "id": other["id"],
                                "index": other["index"],
                                "mig_instance": other["mig_instance"],
                                "utilisation_mean": _r(w.utilisation_mean),
                            }
                            for other, w in others
                        ],
                        "other_gpus_mean": _r(busy),
                        "gpu_count": node["gpu_count"],
                        "hourly_cost": str(node["hourly_cost"]),
                        "fraction_saved": round(fraction, 4),
                        "saving_basis": (
                            f"hourly cost × 730 h × 1/{node['gpu_count']} "
                            "(this GPU's share of the node)"
                        ),
                        "thresholds": {
                            "gpu_idle_utilisation": thresholds.gpu_idle_utilisation,
                            "gpu_idle_peak": thresholds.gpu_idle_peak,
                            "busy_node_utilisation": thresholds.busy_node_utilisation,
                            "min_coverage": thresholds.min_coverage,
                        },
                    },
                    saving=monthly(node["hourly_cost"], fraction),
                    currency=_currency(node, inputs, thresholds),
                )
            )
    return findings


def detect_right_sizing(
    inputs: ScanInputs, thresholds: Thresholds, *, idle: set[int]
) -> list[Finding]:
    """GPU nodes with sustained low utilisation *and* memory: fewer GPUs would carry the peak."""
    findings = []
    hours = thresholds.window_hours
    for node in _gpu_nodes(inputs.compute):
        window = inputs.node_window.get(node["id"])
        if node["id"] in idle or node["gpu_count"] < 2 or not _covered(window, hours, thresholds):
            continue
        capacity_mib = node["gpu_count"] * node["gpu_memory_gb"] * 1024
        if not capacity_mib or window.memory_hours < thresholds.min_coverage * hours:
            continue
        memory_mean = 100 * window.memory_mean / capacity_mib
        memory_peak = 100 * window.memory_peak / capacity_mib
        if not (
            window.utilisation_mean < thresholds.right_size_utilisation
            and window.utilisation_peak < thresholds.right_size_peak
            and memory_mean < thresholds.right_size_memory
            and memory_peak < thresholds.right_size_memory
        ):
            continue
        busiest = max(window.utilisation_peak, memory_peak)
        needed = max(1, math.ceil(node["gpu_count"] * busiest / thresholds.right_size_target))
        if needed >= node["gpu_count"]:
            continue
        fraction = 1 - needed / node["gpu_count"]
        findings.append(
            Finding(
                kind=RecommendationKind.RIGHT_SIZE,
                subject_type=SubjectType.COMPUTE,
                subject_id=node["id"],
                subject_label=node["hostname"],
                title=(
                    f"Right-size {node['hostname']}: {needed} of {node['gpu_count']} GPUs carry "
                    f"its peak ({window.utilisation_peak:.0f}% utilisation, "
                    f"{memory_peak:.0f}% memory)"
                ),
                evidence={
                    "window": _window_evidence(inputs),
                    "hours_with_data": window.utilisation_hours,
                    "utilisation_mean": _r(window.utilisation_mean),
                    "utilisation_peak_hour": _r(window.utilisation_peak),
                    "memory_used_mean_pct": _r(memory_mean),
                    "memory_used_peak_pct": _r(memory_peak),
                    "gpu_count": node["gpu_count"],
                    "gpus_needed": needed,
                    "hourly_cost": str(node["hourly_cost"]),
                    "fraction_saved": round(fraction, 4),
                    "saving_basis": "hourly cost × 730 h × the share of GPUs released",
                    "thresholds": {
                        "right_size_utilisation": thresholds.right_size_utilisation,
                        "right_size_peak": thresholds.right_size_peak,
                        "right_size_memory": thresholds.right_size_memory,
                        "right_size_target": thresholds.right_size_target,
                    },
                },
                saving=monthly(node["hourly_cost"], fraction),
                currency=_currency(node, inputs, thresholds),
            )
        )
    return findings


def least_squares(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """(slope, intercept, r²) of the line through ``points`` (x, y) by ordinary least squares."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    syy = sum((y - mean_y) ** 2 for _, y in points)
    slope = sxy / sxx if sxx else 0.0
    intercept = mean_y - slope * mean_x
    r2 = (sxy * sxy) / (sxx * syy) if sxx and syy else 0.0
    return slope, intercept, r2


def _daily_points(hours: dict[dt.datetime, tuple[float, float]], min_hours: int) -> list[dict]:
    by_day: dict[dt.date, list[float]] = defaultdict(list)
    for moment, (weighted, gpus) in hours.items():
        if gpus:
            by_day[moment.date()].append(weighted / gpus)
    return [
        {
            "day": day.isoformat(),
            "peak": round(max(values), 2),
            "mean": round(sum(values) / len(values), 2),
            "hours": len(values),
        }
        for day, values in sorted(by_day.items())
        if len(values) >= min_hours
    ]


def _forecast(points: list[dict], today: dt.date, thresholds: Thresholds) -> dict | None:
    """Days until the daily peak reaches saturation: 0 when the latest day already did."""
    if not points:
        return None
    latest = points[-1]
    result = {"latest_day": latest["day"], "latest_peak": latest["peak"], "trend": None}
    if latest["peak"] >= thresholds.saturation:
        return {**result, "basis": "at_threshold", "days_until_saturation": 0}
    if len(points) < thresholds.forecast_min_days:
        return None
    xy = [((dt.date.fromisoformat(p["day"]) - today).days, p["peak"]) for p in points]
    slope, intercept, r2 = least_squares(xy)
    result["trend"] = {
        "slope_per_day": round(slope, 3),
        "level_today": round(intercept, 2),
        "r2": round(r2, 3),
    }
    if slope < thresholds.forecast_min_slope:
        return None
    days = max(0, math.ceil((thresholds.saturation - intercept) / slope))
    if days > thresholds.forecast_horizon_days:
        return None
    return {**result, "basis": "trend", "days_until_saturation": days}


def detect_capacity(inputs: ScanInputs, thresholds: Thresholds) -> list[Finding]:
    """Each GPU cluster, and the tenant's GPUs as a whole: days until the daily peak of their
    GPU-weighted utilisation reaches saturation, on the least-squares trend of daily peaks."""
    pools: dict[tuple[str, int | None, str], dict[dt.datetime, tuple[float, float]]] = {}
    whole: dict[dt.datetime, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for pool_id, hours in inputs.pool_hours.items():
        for moment, (weighted, gpus) in hours.items():
            whole[moment][0] += weighted
            whole[moment][1] += gpus
        cluster = inputs.compute.get(pool_id)
        if pool_id and cluster is not None:
            pools[(SubjectType.COMPUTE, pool_id, cluster["hostname"])] = hours
    if whole:
        pools[(SubjectType.TENANT, None, "all GPUs")] = {m: tuple(v) for m, v in whole.items()}
    today = _day_start(inputs.as_of).date()
    findings = []
    for (subject_type, subject_id, label), hours in pools.items():
        points = _daily_points(hours, thresholds.forecast_min_day_hours)
        forecast = _forecast(points, today, thresholds)
        if forecast is None:
            continue
        days = forecast["days_until_saturation"]
        one = subject_type == SubjectType.COMPUTE
        name = label if one else "The tenant's GPUs"
        when = (
            f"already peak{'s' if one else ''} at {forecast['latest_peak']:.0f}%"
            if days == 0
            else f"reach{'es' if one else ''} {thresholds.saturation:.0f}% at peak in about "
            f"{days} days"
        )
        findings.append(
            Finding(
                kind=RecommendationKind.CAPACITY_FORECAST,
                subject_type=subject_type,
                subject_id=subject_id,
                subject_label=label,
                title=f"{name} {when}: plan capacity",
                evidence={
                    **forecast,
                    # The trend's day 0 (its ``level_today``), so the line can be drawn again.
                    "as_of_day": today.isoformat(),
                    "daily": points,
                    "thresholds": {
                        "saturation": thresholds.saturation,
                        "forecast_days": thresholds.forecast_days,
                        "forecast_min_days": thresholds.forecast_min_days,
                        "forecast_min_slope": thresholds.forecast_min_slope,
                        "forecast_horizon_days": thresholds.forecast_horizon_days,
                    },
                },
                currency=tenant_currency(inputs, thresholds),
            )
        )
    return findings


def _robust_band(history: list[float], thresholds: Thresholds) -> tuple[float, float, float]:
    median = statistics.median(history)
    mad = statistics.median(abs(value - median) for value in history)
    half = max(thresholds.anomaly_k * 1.4826 * mad, thresholds.anomaly_min_relative * median)
    return median, median - half, median + half


def _resource_label(inputs: ScanInputs, key: tuple[int, int]) -> str:
    kind, resource_id = key
    if kind == COMPUTE:
        row = inputs.compute.get(resource_id)
        return f"compute:{row['hostname']}" if row else f"compute:{resource_id}"
    names = {row["id"]: row["name"] for row in inputs.deployments}
    return f"deployment:{names.get(resource_id, resource_id)}"


def detect_cost_anomaly(inputs: ScanInputs, thresholds: Thresholds) -> list[Finding]:
    """Yesterday's spend against the tenant's own history (median ± k · MAD, robust to spikes)."""
    today = _day_start(inputs.as_of).date()
    day = today - dt.timedelta(days=1)
    first = today - dt.timedelta(days=thresholds.anomaly_history_days + 1)
    totals: dict[dt.date, float] = defaultdict(float)
    for days in inputs.spend.values():
        for when, spend in days.items():
            if first <= when <= day:
                totals[when] += spend
    history = [spend for when, spend in sorted(totals.items()) if when < day]
    if day not in totals or len(history) < thresholds.anomaly_min_days:
        return []
    spend = totals[day]
    median, low, high = _robust_band(history, thresholds)
    if low <= spend <= high:
        return []
    contributors = []
    for key, days in inputs.spend.items():
        before = [value for when, value in days.items() if first <= when < day]
        usual = statistics.median(before) if before else 0.0
        contributors.append((days.get(day, 0.0) - usual, key, days.get(day, 0.0), usual))
    contributors.sort(reverse=spend > high)
    top = [
        {
            "resource": _resource_label(inputs, key),
            "spend": round(value, 2),
            "usual": round(usual, 2),
            "change": round(change, 2),
        }
        for change, key, value, usual in contributors[:5]
    ]
    above = spend > high
    # A CFO accepts a monthly figure for spend that has stayed high, not for one day's spike:
    # count the days in a row above the band, and project only the least of their excesses.
    run = []
    when = day
    while above and when in totals and totals[when] > high:
        run.append(totals[when] - median)
        when -= dt.timedelta(days=1)
    sustained = len(run) >= thresholds.anomaly_sustained_days
    daily_excess = min(run) if sustained else 0.0
    saving = money(daily_excess * HOURS_PER_MONTH / 24)
    direction = "above" if above else "below"
    if not above:
        basis = "spend below the usual: nothing to save"
    elif sustained:
        basis = (
            f"the least daily excess over the median in the {len(run)} days it has lasted, "
            "× 730 h / 24"
        )
    else:
        basis = (
            f"a spike of {len(run)} day(s): no monthly saving is projected until the excess "
            f"lasts {thresholds.anomaly_sustained_days} days in a row"
        )
    return [
        Finding(
            kind=RecommendationKind.COST_ANOMALY,
            subject_type=SubjectType.TENANT,
            subject_id=None,
            subject_label="whole tenant",
            title=(
                f"Spend on {day.isoformat()} was {spend:,.2f}, {direction} the usual "
                f"{median:,.2f} a day (band {low:,.2f}–{high:,.2f})"
            ),
            evidence={
                "day": day.isoformat(),
                "spend": round(spend, 2),
                "direction": direction,
                "median": round(median, 2),
                "band": [round(low, 2), round(high, 2)],
                "history_days": len(history),
                "history": [
                    {"day": when.isoformat(), "spend": round(value, 2)}
                    for when, value in sorted(totals.items())
                    if when < day
                ],
                "top_contributors": top,
                "days_above": len(run),
                "daily_excess": round(daily_excess, 2),
                "one_off_excess": round(max(spend - median, 0.0), 2),
                "saving_basis": basis,
                "thresholds": {
                    "anomaly_k": thresholds.anomaly_k,
                    "anomaly_min_relative": thresholds.anomaly_min_relative,
                    "anomaly_min_days": thresholds.anomaly_min_days,
                    "anomaly_history_days": thresholds.anomaly_history_days,
                    "anomaly_sustained_days": thresholds.anomaly_sustained_days,
                },
            },
            saving=saving,
            currency=tenant_currency(inputs, thresholds),
        )
    ]


def detect_retired_capacity(inputs: ScanInputs, thresholds: Thresholds) -> list[Finding]:
    """Retired AI systems that still have deployments on compute, and retired compute that still
    costs money (cost telemetry in the window) or still hosts deployments."""
    per_compute: dict[int, int] = defaultdict(int)
    for row in inputs.deployments:
        if row["compute_id"]:
            per_compute[row["compute_id"]] += 1
    findings = []
    default_currency = tenant_currency(inputs, thresholds)
    systems: dict[int, list[dict]] = defaultdict(list)
    for row in inputs.deployments:
        if row["ai_system__stage"] == Stage.RETIRED:
            systems[row["ai_system_id"]].append(row)
    for system_id, rows in systems.items():
        held, saving, currencies = [], Decimal("0"), set()
        for row in rows:
            compute = inputs.compute.get(row["compute_id"]) if row["compute_id"] else None
            share = 1 / per_compute[row["compute_id"]] if compute else 0.0
            if compute and compute["status"] != ComputeStatus.RETIRED:
                saving += monthly(compute["hourly_cost"], share)
                currencies.add(_currency(compute, inputs, thresholds))
            held.append(
                {
                    "deployment": row["name"],
                    "compute": compute["hostname"] if compute else None,
                    "hourly_cost": str(compute["hourly_cost"]) if compute else None,
                    "share_of_compute": round(share, 4),
                }
            )
        name = rows[0]["ai_system__name"]
        hosts = sorted({item["compute"] for item in held if item["compute"]})
        on = f" on {', '.join(hosts)}" if hosts else ""
        findings.append(
            Finding(
                kind=RecommendationKind.RETIRED_CAPACITY,
                subject_type=SubjectType.AI_SYSTEM,
                subject_id=system_id,
                subject_label=name,
                title=(
                    f"Retired AI system '{name}' still holds {len(rows)} "
                    f"deployment{'s' if len(rows) != 1 else ''}{on}; decommission"
                ),
                evidence={
                    "stage": Stage.RETIRED,
                    "deployments": held,
                    "saving_basis": "each host's hourly cost × 730 h × this system's share of "
                    "its deployments",
                },
                saving=money(saving),
                currency=next(iter(currencies)) if len(currencies) == 1 else default_currency,
            )
        )
    first_day = inputs.window_start.date()
    window_days = {
        first_day + dt.timedelta(days=offset) for offset in range(thresholds.window_hours // 24 + 2)
    }
    for compute in inputs.compute.values():
        if compute["status"] != ComputeStatus.RETIRED:
            continue
        recent = {
            when: value
            for when, value in inputs.spend.get((COMPUTE, compute["id"]), {}).items()
            if when in window_days
        }
        hosting = per_compute.get(compute["id"], 0)
        if not recent and not hosting:
            continue
        observed = sum(recent.values())
        findings.append(
            Finding(
                kind=RecommendationKind.RETIRED_CAPACITY,
                subject_type=SubjectType.COMPUTE,
                subject_id=compute["id"],
                subject_label=compute["hostname"],
                title=(
                    f"Retired {compute['hostname']} still "
                    + ("costs money" if recent else f"hosts {hosting} deployment(s)")
                    + "; release it"
                ),
                evidence={
                    "status": ComputeStatus.RETIRED,
                    "deployments_hosted": hosting,
                    "spend_in_window": round(observed, 2),
                    "days_with_spend": sorted(day.isoformat() for day in recent),
                    "hourly_cost": str(compute["hourly_cost"]),
                    "saving_basis": "hourly cost × 730 h",
                },
                saving=monthly(compute["hourly_cost"]),
                currency=_currency(compute, inputs, thresholds),
            )
        )
    return findings


def detect_all(inputs: ScanInputs, thresholds: Thresholds) -> list[Finding]:
    idle = detect_idle_gpus(inputs, thresholds)
    idle_ids = {finding.subject_id for finding in idle}
    right_size = detect_right_sizing(inputs, thresholds, idle=idle_ids)
    right_sized = {finding.subject_id for finding in right_size}
    return [
        *idle,
        *right_size,
        *detect_idle_gpus_on_busy_nodes(inputs, thresholds, right_sized=right_sized | idle_ids),
        *detect_cost_anomaly(inputs, thresholds),
        *detect_capacity(inputs, thresholds),
        *detect_retired_capacity(inputs, thresholds),
    ]
