"""The client's view of its AI estate: sites, compute with recent GPU utilisation, the register
of AI systems, deployments and datasets. Read-only: the MSP keeps the estate (admin, API, bulk
import); the portal shows it back to the client.

Every page goes through ``portal_tenant_view`` (tenant from the URL, same 404 for foreign and
missing). Each table is one query, whatever the size of the estate.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone
from django.views.decorators.http import require_GET

from operations.inventory.models import AISystem, Stage
from operations.inventory.selectors import estate_tables
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.selectors import telemetry_hourly_means
from tenants.portal.access import PortalTenant, portal_tenant_view, render_portal
from tenants.portal.charts import Chart, format_time, sparkline

SPARKLINE_HOURS = 72
UTILISATION = METRICS_BY_NAME["gpu_utilization"]


@dataclass(frozen=True)
class Sparkline:
    chart: Chart
    average: float
    latest: float
    hours: int  # hours with data in the window


def gpu_utilisation_sparklines(
    *, tenant, compute_ids: list[int], hours: int
) -> dict[int, Sparkline]:
    """Hourly mean GPU utilisation of each resource over the last ``hours``; one query.

    Hourly rollups, not raw samples: a few dozen points per resource whatever the ingest rate.
    """
    if not compute_ids:
        return {}
    end = timezone.now().replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    start = end - dt.timedelta(hours=hours)
    series = telemetry_hourly_means(
        tenant=tenant,
        resource_kind=ResourceKind.COMPUTE,
        resource_ids=compute_ids,
        metric=UTILISATION,
        start=start,
        end=end,
    )
    return {
        resource_id: _sparkline(points, start=start, hours=hours)
        for resource_id, points in series.items()
    }


def _sparkline(points, *, start: dt.datetime, hours: int) -> Sparkline:
    span = max(hours - 1, 1)
    samples = sum(count for _bucket, _value, count in points)
    # Weighted by sample count: an hour with one sample should not weigh like a full one.
    average = sum(value * count for _bucket, value, count in points) / samples if samples else 0.0
    average = round(average, 1)
    latest = round(points[-1][1], 1)
    zone = timezone.get_current_timezone()
    chart = sparkline(
        [value for _bucket, value, _count in points],
        label=f"GPU utilisation, last {hours} h: average {average} %, latest hour {latest} %",
        # Placed by the hour, so an hour without telemetry leaves its gap on the time axis.
        positions=[(bucket - start).total_seconds() / 3600 for bucket, _value, _count in points],
        position_range=(0, span),
        labels=[format_time(bucket, zone) for bucket, _value, _count in points],
    )
    return Sparkline(
        chart=chart,
        average=average,
        latest=latest,
        hours=len(points),
    )


@portal_tenant_view()
@require_GET
def estate_overview(request, page: PortalTenant):
    tenant = page.tenant
    tables = estate_tables(tenant=tenant)
    sparklines = gpu_utilisation_sparklines(
        tenant=tenant,
        compute_ids=[compute.id for compute in tables["compute"] if compute.gpu_count],
        hours=SPARKLINE_HOURS,
    )
    for compute in tables["compute"]:
        compute.utilisation = sparklines.get(compute.id)
    return render_portal(
        request,
        page,
        "inventory/estate.html",
        section="estate",
        sparkline_hours=SPARKLINE_HOURS,
        stages=_stage_counts(tables["ai_systems"]),
        **tables,
    )


def _stage_counts(systems: list[AISystem]) -> list[tuple[str, str, int]]:
    """(value, label, count) for each lifecycle stage, in lifecycle order."""
    return [
        (stage.value, stage.label, sum(1 for system in systems if system.stage == stage))
        for stage in Stage
    ]
