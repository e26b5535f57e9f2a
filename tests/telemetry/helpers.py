"""Shared pieces of the telemetry tests: URLs, stored rows, timestamps."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from operations.telemetry.metrics import METRICS_BY_NAME
from operations.telemetry.models import TelemetryDirtyHour, TelemetryRollup, TelemetrySample
from tenants.scoping import tenant_scope
from tests.factories import make_gpu_device
from tests.inventory.estate import make_gpu_node
from tests.telemetry.remote_write_payloads import HEADERS, snappy, write_request


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


def telemetry_route_calls(actor, tenant) -> dict:
    """The telemetry and GPU routes, each a call answering its response: remote write (a GPU's
    utilisation), the node's GPUs, and the series of one GPU (``?gpu=``)."""
    node = make_gpu_node(tenant, hostname="acme-gpu-routes-01")
    gpu = make_gpu_device(tenant, compute=node, index=0)
    labels = {"__name__": "DCGM_FI_DEV_GPU_UTIL", "Hostname": node.hostname, "gpu": "0"}
    body = snappy(
        write_request(
            [({**labels, "UUID": gpu.uuid}, [(50.0, int(minutes_ago(1).timestamp() * 1000))])]
        )
    )
    base = f"/api/v1/tenants/{tenant.slug}"
    return {
        "remote-write": lambda: actor.client.generic(
            "POST",
            f"{base}/telemetry/remote-write",
            body,
            content_type="application/x-protobuf",
            **HEADERS,
        ),
        "gpus": lambda: actor.client.get(f"{base}/gpus/", {"compute": node.pk}),
        "series-of-a-gpu": lambda: actor.client.get(
            f"{base}/telemetry/series",
            {"resource": f"compute:{node.hostname}", "gpu": "0", "metric": "gpu_utilization"},
        ),
    }
