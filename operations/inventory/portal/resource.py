"""A compute resource's or a deployment's page in the client portal: its facts, one chart per
metric over a chosen range (6 h and 24 h from raw samples, 7 d and 30 d from hourly rollups,
with each hour's range shaded), its open incidents and the recommendations about it.

A node whose GPUs report their own series also gets a small utilisation chart per GPU (hourly
means) and a table of its GPUs: utilisation, hottest temperature and highest XID error code in
the range, last report.

Times are drawn in the viewer's zone (activated per request). A fixed number of queries: one per
metric of the resource's kind at most two, and five for the GPUs, whatever the number of
samples or GPUs.

With the telemetry store out of reach (VictoriaMetrics down), the page still answers 200: the
charts read from raw samples and the GPU table's raw-window columns say telemetry is
unavailable, while the facts, incidents, recommendations and the rollup charts (7 d, 30 d, the
GPUs' hourly means) stay; the first failed read stops the others (no wait per metric).
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass

from django.utils import timezone
from django.views.decorators.http import require_GET

from operations.incidents.selectors import incident_open_about
from operations.inventory.models import GpuDevice
from operations.inventory.selectors import (
    compute_get_for_page,
    compute_gpu_ids_query,
    compute_gpus_for_page,
    deployment_get_for_page,
)
from operations.optimisation.selectors import recommendations_about, recommendations_about_node
from operations.telemetry.exceptions import TelemetryUnavailable
from operations.telemetry.metrics import DCGM_FIELDS, METRICS, METRICS_BY_NAME, Metric, ResourceKind
from operations.telemetry.selectors import (
    ResourceRef,
    WindowStats,
    telemetry_hourly_means,
    telemetry_series,
    telemetry_window_stats,
)
from tenants.portal.access import PortalTenant, portal_tenant_view, render_portal, tenant_not_found
from tenants.portal.charts import Band, Chart, Series, line_chart


@dataclass(frozen=True)
class TimeRange:
    key: str
    label: str
    span: dt.timedelta
    step: str  # telemetry_series' step: "auto" reads raw samples (hourly past a limit)


RANGES = {
    r.key: r
    for r in (
        TimeRange("6h", "6 hours", dt.timedelta(hours=6), "auto"),
        TimeRange("24h", "24 hours", dt.timedelta(hours=24), "auto"),
        TimeRange("7d", "7 days", dt.timedelta(days=7), "1h"),
        TimeRange("30d", "30 days", dt.timedelta(days=30), "1h"),
    )
}
DEFAULT_RANGE = "24h"
_AGGREGATES = {field.metric.code: field.aggregate for field in DCGM_FIELDS.values()}
_AGGREGATE_WORDS = {"mean": "mean", "sum": "total", "max": "hottest"}
#: Each metric's y axis, short enough to stand beside it.
AXIS_TITLES = {
    "gpu_utilization": "GPU utilisation",
    "gpu_memory_used_mib": "Memory used",
    "gpu_memory_free_mib": "Memory free",
    "gpu_power_watts": "Power",
    "gpu_temperature_celsius": "Temperature",
    "gpu_xid_errors": "XID error code",
    "gpu_graphics_engine_active": "Engine active",
    "gpu_tensor_active": "Tensor active",
    "inference_latency_p95_ms": "Latency p95",
    "requests_per_second": "Requests",
    "error_rate": "Error rate",
    "cost_per_hour": "Cost",
}


@dataclass(frozen=True)
class MetricChart:
    metric: Metric
    chart: Chart
    step: str


def metric_lines(*, metric: Metric, kind: int, points: list[dict], gpu_count: int) -> list[Series]:
    """The lines of one metric's chart: a node's charts draw its aggregate over all its GPUs
    (derived at ingest); each GPU's own series is drawn in the page's GPU section."""
    if kind == ResourceKind.COMPUTE and metric.code in _AGGREGATES and gpu_count:
        name = f"All {gpu_count} GPUs ({_AGGREGATE_WORDS[_AGGREGATES[metric.code]]})"
    else:
        name = AXIS_TITLES.get(metric.name, metric.name)
    value = "value" if points and "value" in points[0] else "avg"
    return [Series(name, [(p["ts"], p[value]) for p in points])]


def _gap(points: list[dict], step: str) -> dt.timedelta:
    if step == "1h":
        return dt.timedelta(hours=2)
    if step == "1d":
        return dt.timedelta(days=2)
    spacing = [(b["ts"] - a["ts"]) for a, b in zip(points, points[1:], strict=False)]
    return 3 * statistics.median(spacing) if spacing else dt.timedelta(hours=1)


@dataclass(frozen=True)
class MetricCharts:
    charts: list[MetricChart]
    silent: list[Metric]  # the metrics without data in the range
    unavailable: bool = False  # the telemetry store did not answer: no chart is drawn


def metric_charts(
    *,
    tenant,
    resource: ResourceRef,
    chosen: TimeRange,
    now: dt.datetime,
    gpu_count: int,
    currency: str = "",
) -> MetricCharts:
    """The charts of the metrics with data in the range, and the metrics without; none, marked
    unavailable, when the telemetry store does not answer."""
    charts, silent = [], []
    for metric in METRICS:
        if resource.kind not in metric.kinds:
            continue
        try:
            series = telemetry_series(
                tenant=tenant,
                resource=resource,
                metric=metric,
                start=now - chosen.span,
                end=now,
                step=chosen.step,
            )
        except TelemetryUnavailable:
            return MetricCharts([], [], unavailable=True)
        if series is None or not series.points:
            silent.append(metric)
            continue
        rolled_up = series.step != "raw"
        percent = metric.unit == "%"
        charts.append(
            MetricChart(
                metric,
                line_chart(
                    title=f"{metric.description.rstrip('.')}, last {chosen.label}"
                    + (" (hourly means)" if rolled_up else ""),
                    series=metric_lines(
                        metric=metric, kind=resource.kind, points=series.points, gpu_count=gpu_count
                    ),
                    y_title=AXIS_TITLES.get(metric.name, metric.name),
                    # Cost is in the cloud account's currency where the resource has one.
                    unit=f"{currency}/h"
                    if metric.unit == "currency/h" and currency
                    else metric.unit,
                    y_range=(0, 100) if percent else None,
                    gap=_gap(series.points, series.step),
                    band=Band(
                        "Hourly range", [(p["ts"], p["min"], p["max"]) for p in series.points]
                    )
                    if rolled_up
                    else None,
                    height=280,
                ),
                series.step,
            )
        )
    return MetricCharts(charts, silent)


UTILISATION = METRICS_BY_NAME["gpu_utilization"]
TEMPERATURE = METRICS_BY_NAME["gpu_temperature_celsius"]
XID = METRICS_BY_NAME["gpu_xid_errors"]
#: Each small GPU chart: two or three to a row, at about their drawn size.
GPU_CHART_SIZE = (460, 240)


@dataclass(frozen=True)
class GpuRow:
    """One GPU of the node over the chosen range: its small chart and its table row."""

    gpu: GpuDevice
    label: str
    chart: Chart
    utilisation_mean: float | None  # over the hourly means, weighted by their samples
    utilisation_peak_hour: float | None
    temperature_highest: float | None
    xid_highest: float | None  # the highest XID error code reported (0: none)
    last_sample_at: dt.datetime | None


def gpu_label(gpu: GpuDevice) -> str:
    mig = f" MIG {gpu.mig_instance}" if gpu.mig_instance else ""
    profile = f" ({gpu.mig_profile})" if gpu.mig_profile else ""
    return f"GPU {gpu.index}{mig}{profile}"


@dataclass(frozen=True)
class GpuTable:
    rows: list[GpuRow]
    unavailable: bool = False  # the raw-window figures could not be read (telemetry store)
    # The first hour any GPU has a mean for, when that is well inside the range: the node's own
    # series can reach further back (kept before the GPUs were), and the page says so.
    series_since: dt.datetime | None = None

    @property
    def reporting(self) -> bool:
        """Whether to draw the GPUs' charts: a GPU reported in the range (or, the store out of
        reach, has hourly means to draw)."""
        return any(
            row.last_sample_at or (self.unavailable and row.utilisation_mean is not None)
            for row in self.rows
        )


def gpu_rows(
    *, tenant, compute_id: int, chosen: TimeRange, now: dt.datetime, read_raw: bool = True
) -> GpuTable:
    """The node's GPUs with their figures over ``chosen``: five queries whatever their number
    (the GPUs, their hourly utilisation, and the raw window of utilisation, temperature and XID
    errors). No rows when the node has no GPU rows in the inventory. ``read_raw`` False, or the
    telemetry store not answering, leaves the raw-window figures out (None, marked
    unavailable)."""
    gpus = compute_gpus_for_page(tenant=tenant, compute_id=compute_id)
    if not gpus:
        return GpuTable([])
    start = now - chosen.span
    ids = [gpu.pk for gpu in gpus]
    hourly = telemetry_hourly_means(
        tenant=tenant,
        resource_kind=ResourceKind.GPU,
        resource_ids=ids,
        metric=UTILISATION,
        start=start.replace(minute=0, second=0, microsecond=0),
        end=now,
    )
    windows: dict[str, dict[int, WindowStats]] = {}
    unavailable = not read_raw
    try:
        for metric in (UTILISATION, TEMPERATURE, XID) if read_raw else ():
            stats = telemetry_window_stats(
                tenant=tenant,
                kind=ResourceKind.GPU,
                metric=metric,
                start=start,
                end=now,
                resources=compute_gpu_ids_query(tenant=tenant, compute_id=compute_id),
            )
            windows[metric.name] = {row.resource_id: row for row in stats}
    except TelemetryUnavailable:
        windows, unavailable = {}, True
    rows = []
    for gpu in gpus:
        points = hourly.get(gpu.pk, [])
        samples = sum(count for _hour, _mean, count in points)
        label = gpu_label(gpu)
        last = [window[gpu.pk].last_at for window in windows.values() if gpu.pk in window]
        temperature = windows.get(TEMPERATURE.name, {}).get(gpu.pk)
        xid = windows.get(XID.name, {}).get(gpu.pk)
        rows.append(
            GpuRow(
                gpu=gpu,
                label=label,
                chart=line_chart(
                    title=f"{label}: utilisation, hourly means",
                    series=[Series(label, [(hour, mean) for hour, mean, _count in points])],
                    y_title="Utilisation",
                    unit="%",
                    y_range=(0, 100),
                    gap=dt.timedelta(hours=2),
                    width=GPU_CHART_SIZE[0],
                    height=GPU_CHART_SIZE[1],
                ),
                utilisation_mean=(
                    sum(mean * count for _hour, mean, count in points) / samples
                    if samples
                    else None
                ),
                utilisation_peak_hour=max((mean for _h, mean, _c in points), default=None),
                temperature_highest=temperature.highest if temperature else None,
                xid_highest=xid.highest if xid else None,
                last_sample_at=max(last) if last else None,
            )
        )
    first_hour = min((points[0][0] for points in hourly.values() if points), default=None)
    later = first_hour is not None and first_hour > start + dt.timedelta(hours=1)
    return GpuTable(rows, unavailable, series_since=first_hour if later else None)


def _chosen_range(request) -> TimeRange:
    return RANGES.get(request.GET.get("range", DEFAULT_RANGE), RANGES[DEFAULT_RANGE])


@portal_tenant_view()
@require_GET
def compute_detail(request, page: PortalTenant, pk: int):
    tenant = page.tenant
    compute = compute_get_for_page(tenant=tenant, pk=pk)
    if compute is None:
        return tenant_not_found(request)
    chosen = _chosen_range(request)
    now = timezone.now()
    telemetry = metric_charts(
        tenant=tenant,
        resource=ResourceRef(ResourceKind.COMPUTE, compute.pk, compute.hostname),
        chosen=chosen,
        now=now,
        gpu_count=compute.gpu_count,
        currency=compute.cloud_account.currency if compute.cloud_account else "",
    )
    gpus = gpu_rows(
        tenant=tenant,
        compute_id=compute.pk,
        chosen=chosen,
        now=now,
        read_raw=not telemetry.unavailable,  # one wait for an unreachable store, not two
    )
    return render_portal(
        request,
        page,
        "inventory/resource.html",
        section="estate",
        resource_kind="compute",
        compute=compute,
        name=compute.hostname,
        ranges=RANGES.values(),
        zone_name=timezone.get_current_timezone_name(),
        chosen=chosen,
        charts=telemetry.charts,
        silent=telemetry.silent,
        telemetry_unavailable=telemetry.unavailable,
        gpus=gpus.rows,
        gpus_reporting=gpus.reporting,
        gpus_unavailable=gpus.unavailable,
        gpus_series_since=gpus.series_since,
        incidents=incident_open_about(tenant=tenant, compute_id=compute.pk),
        # The node's and its GPUs' (an idle GPU on a busy node).
        recommendations=recommendations_about_node(
            tenant=tenant, compute_id=compute.pk, gpu_ids=[row.gpu.pk for row in gpus.rows]
        ),
    )


@portal_tenant_view()
@require_GET
def deployment_detail(request, page: PortalTenant, pk: int):
    tenant = page.tenant
    deployment = deployment_get_for_page(tenant=tenant, pk=pk)
    if deployment is None:
        return tenant_not_found(request)
    chosen = _chosen_range(request)
    telemetry = metric_charts(
        tenant=tenant,
        resource=ResourceRef(ResourceKind.DEPLOYMENT, deployment.pk, deployment.name),
        chosen=chosen,
        now=timezone.now(),
        gpu_count=0,
        currency=deployment.compute.cloud_account.currency
        if deployment.compute and deployment.compute.cloud_account_id
        else "",
    )
    return render_portal(
        request,
        page,
        "inventory/resource.html",
        section="estate",
        resource_kind="deployment",
        deployment=deployment,
        name=deployment.name,
        ranges=RANGES.values(),
        zone_name=timezone.get_current_timezone_name(),
        chosen=chosen,
        charts=telemetry.charts,
        silent=telemetry.silent,
        telemetry_unavailable=telemetry.unavailable,
        incidents=incident_open_about(tenant=tenant, deployment_id=deployment.pk),
        # Recommendations are about the AI system the deployment serves.
        recommendations=recommendations_about(
            tenant=tenant, subject_type="ai_system", subject_id=deployment.ai_system_id
        ),
    )
