"""Building blocks of the optimisation tests: real samples through the ingest service, rolled up
by the rollup service, then scanned."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from operations.optimisation.conf import Thresholds
from operations.optimisation.models import Recommendation
from operations.optimisation.services import optimisation_run_for_tenant
from operations.telemetry.services import telemetry_ingest_batch, telemetry_rollup_pending
from tenants.scoping import tenant_scope


def this_hour() -> dt.datetime:
    return timezone.now().astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def today() -> dt.datetime:
    return this_hour().replace(hour=0)


def hours_between(start: dt.datetime, end: dt.datetime):
    moment = start
    while moment < end:
        yield moment
        moment += dt.timedelta(hours=1)


def feed(tenant, resource: str, metric: str, start: dt.datetime, end: dt.datetime, value):
    """A sample at half past each hour in [start, end); ``value``: a number or hour -> number."""
    samples = [
        {
            "resource": resource,
            "metric": metric,
            "ts": (hour + dt.timedelta(minutes=30)).isoformat(),
            "value": value(hour) if callable(value) else value,
        }
        for hour in hours_between(start, end)
        if hour + dt.timedelta(minutes=30) < timezone.now()
    ]
    with tenant_scope(tenant.id):
        for offset in range(0, len(samples), 5000):
            telemetry_ingest_batch(tenant=tenant, samples=samples[offset : offset + 5000])
        telemetry_rollup_pending(tenant=tenant)
    return len(samples)


def feed_gpu(tenant, node, *, hours: int = 72, utilisation=2.0, memory_pct=None):
    """GPU utilisation (and memory used as % of the node's memory) for the last ``hours``."""
    end = this_hour()
    start = end - dt.timedelta(hours=hours)
    resource = f"compute:{node.hostname}"
    feed(tenant, resource, "gpu_utilization", start, end, utilisation)
    if memory_pct is not None:
        capacity = node.gpu_count * node.gpu_memory_gb * 1024
        if callable(memory_pct):
            value = lambda hour: capacity * memory_pct(hour) / 100  # noqa: E731
        else:
            value = capacity * memory_pct / 100
        feed(tenant, resource, "gpu_memory_used_mib", start, end, value)


def scan(tenant, **overrides) -> dict:
    thresholds = Thresholds().with_overrides(**overrides)
    with tenant_scope(tenant.id):
        return optimisation_run_for_tenant(tenant=tenant, thresholds=thresholds)


def recommendations(tenant, **filters) -> list[Recommendation]:
    with tenant_scope(tenant.id):
        return list(Recommendation.objects.filter(**filters).order_by("kind", "subject_key"))


def by_kind(tenant, kind: str) -> list[Recommendation]:
    return recommendations(tenant, kind=kind)
