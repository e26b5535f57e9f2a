"""Shared pieces of the telemetry tests: URLs, stored rows, timestamps."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from operations.telemetry.metrics import METRICS_BY_NAME
from operations.telemetry.models import TelemetryDirtyHour, TelemetryRollup, TelemetrySample
from tenants.scoping import tenant_scope


def code(name: str) -> int:
    return METRICS_BY_NAME[name].code


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def minutes_ago(minutes: float = 0) -> dt.datetime:
    return timezone.now().replace(microsecond=0) - dt.timedelta(minutes=minutes)


def url(tenant_or_slug, what: str) -> str:
    slug = getattr(tenant_or_slug, "slug", tenant_or_slug)
    return f"/api/v1/tenants/{slug}/telemetry/{what}"


def stored(tenant) -> list[tuple]:
    """(kind, resource id, metric code, ts, value) of every stored sample, sorted."""
    with tenant_scope(tenant.id):
        return sorted(
            TelemetrySample.objects.values_list(
                "resource_kind", "resource_id", "metric", "ts", "value"
            )
        )


def rollups(tenant) -> list[tuple]:
    """(kind, resource id, metric code, bucket, min, max, avg, count), sorted."""
    with tenant_scope(tenant.id):
        return sorted(
            TelemetryRollup.objects.values_list(
                "resource_kind",
                "resource_id",
                "metric",
                "bucket",
                "min_value",
                "max_value",
                "avg_value",
                "sample_count",
            )
        )


def dirty_hours(tenant) -> set[dt.datetime]:
    with tenant_scope(tenant.id):
        return set(TelemetryDirtyHour.objects.values_list("hour", flat=True))
