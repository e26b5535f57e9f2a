"""Demo telemetry: a few days of 5-minute samples for a tenant's estate, with patterns to find.

``seed_telemetry(tenant, days=3)`` reads the tenant's compute and deployments (seeded by
``operations.inventory.demo``) and writes samples through the same ingest service as the API,
then rolls them up. Patterns, by hostname and name:

- ``gpu-idle`` in a hostname: an idle GPU node, utilisation about 2 %;
- ``gpu-sat`` or ``gpu-hot`` in a hostname, or a node of such a cluster: saturated, about 97 %;
- every other GPU node: a diurnal load (busy in the European day, quiet at night);
- one production deployment (the first by name) has a latency spike with errors, 6 to 8 hours
  ago; the other deployments follow the diurnal traffic;
- running cost once an hour for compute with a cost, and for deployments.

Compute in maintenance, offline or retired reports nothing. Values are a deterministic function
of resource and time, and ingest skips samples already stored: running it again adds only the
time that has passed since (idempotent).
"""

from __future__ import annotations

import datetime as dt
import math
import zlib

from django.utils import timezone

from operations.inventory.models import ComputeKind, ComputeResource, ComputeStatus, Deployment
from operations.telemetry.services import (
    MAX_BATCH,
    telemetry_ingest_batch,
    telemetry_rollup_pending,
)
from tenants.scoping import tenant_scope

STEP = dt.timedelta(minutes=5)
_SATURATED = ("gpu-sat", "gpu-hot")
_REPORTING = (ComputeStatus.ACTIVE,)


def _noise(key: str, moment: dt.datetime) -> float:
    """A stable pseudo-random number in [-1, 1) for a series and an instant."""
    digest = zlib.crc32(f"{key}|{int(moment.timestamp())}".encode())
    return digest / 2**31 - 1.0


def _daylight(moment: dt.datetime) -> float:
    """0 at 03:00 UTC, 1 at 15:00 UTC: a working day's load curve."""
    hours = moment.hour + moment.minute / 60
    return (1 - math.cos(2 * math.pi * (hours - 3) / 24)) / 2


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _gpu_profile(node: ComputeResource, cluster_names: dict[int, str]) -> str:
    names = (node.hostname, cluster_names.get(node.cluster_id, ""))
    if "gpu-idle" in node.hostname:
        return "idle"
    if any(marker in name for name in names for marker in _SATURATED):
        return "saturated"
    return "diurnal"


def _gpu_samples(node: ComputeResource, profile: str, moment: dt.datetime) -> list[tuple]:
    key = node.hostname
    jitter = _noise(key, moment)
    if profile == "idle":
        utilization = 2 + jitter
    elif profile == "saturated":
        utilization = 97 + 2 * jitter
    else:
        utilization = 12 + 70 * _daylight(moment) + 6 * jitter
    utilization = _clamp(utilization, 0, 100)
    gpus = max(node.gpu_count, 1)
    memory_mib = max(node.gpu_memory_gb, 16) * 1024 * gpus
    busy = utilization / 100
    return [
        ("gpu_utilization", round(utilization, 2)),
        ("gpu_memory_used_mib", round(memory_mib * (0.05 + 0.85 * busy))),
        ("gpu_power_watts", round(gpus * (60 + 600 * busy + 10 * jitter), 1)),
        ("gpu_temperature_celsius", round(_clamp(32 + 46 * busy + 2 * jitter, 20, 95), 1)),
        ("gpu_tensor_active", round(_clamp(utilization * 0.78 + 3 * jitter, 0, 100), 2)),
    ]


def _deployment_samples(name: str, spike: bool, moment: dt.datetime, now: dt.datetime):
    jitter = _noise(name, moment)
    traffic = 5 + 120 * _daylight(moment)
    latency = 90 + 40 * _daylight(moment) + 8 * jitter
    errors = 0.2 + 0.1 * jitter
    if spike and now - dt.timedelta(hours=8) <= moment < now - dt.timedelta(hours=6):
        latency *= 7
        errors = 6 + 2 * jitter
    return [
        ("inference_latency_p95_ms", round(latency, 1)),
        ("requests_per_second", round(max(traffic * (1 + 0.1 * jitter), 0), 2)),
        ("error_rate", round(_clamp(errors, 0, 100), 3)),
    ]


def _samples(tenant, *, start: dt.datetime, end: dt.datetime, now: dt.datetime) -> list[dict]:
    compute = list(
        ComputeResource.objects.filter(tenant=tenant).only(
            "hostname", "kind", "status", "cluster_id", "gpu_count", "gpu_memory_gb", "hourly_cost"
        )
    )
    cluster_names = {c.pk: c.hostname for c in compute if c.kind == ComputeKind.GPU_CLUSTER}
    deployments = list(
        Deployment.objects.filter(tenant=tenant).order_by("name").values("name", "environment")
    )
    production = [row["name"] for row in deployments if row["environment"] == "production"]
    spiking = production[0] if production else None

    samples: list[dict] = []

    def add(resource: str, metric: str, moment: dt.datetime, value: float) -> None:
        samples.append({"resource": resource, "metric": metric, "ts": moment, "value": value})

    moment = start
    while moment < end:
        on_the_hour = moment.minute == 0
        for node in compute:
            if node.status not in _REPORTING:
                continue
            resource = f"compute:{node.hostname}"
            if node.kind == ComputeKind.GPU_NODE:
                profile = _gpu_profile(node, cluster_names)
                for metric, value in _gpu_samples(node, profile, moment):
                    add(resource, metric, moment, value)
            if on_the_hour and node.hourly_cost and node.kind != ComputeKind.GPU_CLUSTER:
                add(resource, "cost_per_hour", moment, float(node.hourly_cost))
        for row in deployments:
            resource = f"deployment:{row['name']}"
            spike = row["name"] == spiking
            for metric, value in _deployment_samples(row["name"], spike, moment, now):
                add(resource, metric, moment, value)
            if on_the_hour:
                add(resource, "cost_per_hour", moment, round(2 + 1.5 * _daylight(moment), 2))
        moment += STEP
    return samples


def seed_telemetry(tenant, *, days: int = 3, now: dt.datetime | None = None) -> dict:
    """Ingest ``days`` of 5-minute samples for the tenant's estate and roll them up."""
    now = now or timezone.now()
    # Whole 5-minute steps, ending at the last one before now.
    end = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=now.minute % 5)
    start = end - dt.timedelta(days=days)
    with tenant_scope(tenant.id):
        samples = _samples(tenant, start=start, end=end + STEP, now=now)
    for sample in samples:
        sample["ts"] = sample["ts"].isoformat()
    received = inserted = 0
    for offset in range(0, len(samples), MAX_BATCH):
        with tenant_scope(tenant.id):
            result = telemetry_ingest_batch(
                tenant=tenant, samples=samples[offset : offset + MAX_BATCH], now=now
            )
        received += result.received
        inserted += result.inserted
    with tenant_scope(tenant.id):
        rolled = telemetry_rollup_pending(tenant=tenant, now=now)
    return {"samples": received, "inserted": inserted, **rolled}
