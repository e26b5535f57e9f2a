"""Recent GPU utilisation of a tenant's compute, drawn as inline SVG sparklines.

Hourly rollups, not raw samples: a few dozen points per resource whatever the ingest rate,
read for every resource in one query. SVG on the server keeps the page free of a JavaScript
charting dependency and readable without scripts.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.utils import timezone

from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.models import TelemetryRollup

WIDTH = 120
HEIGHT = 28
UTILISATION = METRICS_BY_NAME["gpu_utilization"]


@dataclass(frozen=True)
class Sparkline:
    points: str  # SVG polyline points, 0–100 % mapped onto the box
    average: float
    latest: float
    hours: int  # hours with data in the window


def gpu_utilisation_sparklines(
    *, tenant, compute_ids: list[int], hours: int
) -> dict[int, Sparkline]:
    """Hourly mean GPU utilisation of each resource over the last ``hours``; one query."""
    if not compute_ids:
        return {}
    end = timezone.now().replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    start = end - dt.timedelta(hours=hours)
    rows = (
        TelemetryRollup.objects.filter(
            tenant=tenant,
            resource_kind=ResourceKind.COMPUTE,
            resource_id__in=compute_ids,
            metric=UTILISATION.code,
            bucket__gte=start,
            bucket__lt=end,
        )
        .order_by("resource_id", "bucket")
        .values_list("resource_id", "bucket", "avg_value", "sample_count")
    )
    series: dict[int, list[tuple[dt.datetime, float, int]]] = defaultdict(list)
    for resource_id, bucket, value, count in rows:
        series[resource_id].append((bucket, value, count))
    return {
        resource_id: _sparkline(points, start=start, hours=hours)
        for resource_id, points in series.items()
    }


def _sparkline(points, *, start: dt.datetime, hours: int) -> Sparkline:
    coordinates = []
    for bucket, value, _count in points:
        x = (bucket - start).total_seconds() / 3600 / max(hours - 1, 1) * WIDTH
        y = HEIGHT - min(max(value, 0.0), 100.0) / 100 * HEIGHT
        coordinates.append(f"{x:.1f},{y:.1f}")
    samples = sum(count for _bucket, _value, count in points)
    # Weighted by sample count: an hour with one sample should not weigh like a full one.
    average = sum(value * count for _bucket, value, count in points) / samples if samples else 0.0
    return Sparkline(
        points=" ".join(coordinates),
        average=round(average, 1),
        latest=round(points[-1][1], 1),
        hours=len(points),
    )
