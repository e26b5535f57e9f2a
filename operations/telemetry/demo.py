"""Demo telemetry: days of samples for a tenant's estate, with patterns to find.

``seed_telemetry(tenant, days=DEMO_DAYS)`` reads the tenant's compute and deployments (seeded by
``operations.inventory.demo``) and writes samples through the same ingest service as the API,
then rolls them up. The last ``detail_days`` (3) are sampled every 5 minutes; older days once an
hour, on the hour (every hour still has data, so daily figures and spend are whole, and seeding
ten days costs about a fifth more than three). Patterns, by hostname and name:

- ``gpu-idle`` in a hostname: an idle GPU node, utilisation about 2 %;
- every GPU node's values are its GPUs' (``_gpu_values``), and its samples their aggregate as
  the dcgm ingest derives it (mean utilisation, summed memory and power, hottest GPU …); the
  GPUs in the inventory also report their own series for the last ``GPU_SERIES_HOURS`` (6),
  every quarter hour: on ``…gpu-main-01`` the last GPU idles (about 1.5 %) while the others
  carry the node's load, and on ``…gpu-hot-02`` GPU 3 reports XID 79 for the last
  ``XID_HOURS`` (3);
- ``gpu-sat`` or ``gpu-hot`` in a hostname, or a node of such a cluster: saturated, about 97 %
  now, after a steady climb of ``HOT_RISE_PER_DAY`` points a day (about 77 % ten days ago, still
  above 90 % for the last three days), so the optimisation scan sees a capacity trend;
- every other GPU node: a diurnal load (busy in the European day, quiet at night);
- one production deployment (the first by name) has a latency spike with errors, 6 to 8 hours
  ago; the other deployments follow the diurnal traffic;
- running cost once an hour for compute with a cost, and for deployments;
- with ``spend_jump=True``, another production deployment (the second by name) scales out at the
  start of the third-last whole UTC day and stays so: its hourly cost rises by ``SPEND_JUMP`` of
  the tenant's usual hourly spend, which the optimisation scan reports as a cost anomaly that
  has lasted ``SPEND_JUMP_DAYS`` days (so it projects a monthly saving; a one-day spike would not).

With ``calm=True`` (a mature, well-sized estate) every GPU node follows the diurnal load, no
GPU idles alone or reports XID errors, and no deployment spikes. With ``quiet_days`` (a
suspended client) the feed stopped that many days ago: the samples end then, and once the
tenant has them nothing more arrives on a later run.

Compute in maintenance, offline or retired reports nothing. Values are a deterministic function
of resource and time, and ingest skips samples already stored: running it again adds only the
time that has passed since (idempotent).
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from dataclasses import dataclass

from django.utils import timezone

from operations.inventory.models import (
    ComputeKind,
    ComputeResource,
    ComputeStatus,
    Deployment,
    GpuDevice,
)
from operations.telemetry.metrics import DCGM_FIELDS
from operations.telemetry.services import (
    MAX_BATCH,
    telemetry_ingest_batch,
    telemetry_rollup_pending,
)
from operations.telemetry.storage import sample_store
from tenants.scoping import tenant_scope

STEP = dt.timedelta(minutes=5)
#: Older than the last ``detail_days``, one sample an hour.
COARSE_STEP = dt.timedelta(hours=1)
#: What the demo seeds: enough days for a cost anomaly (7 days of history before the last) and a
#: capacity trend (5 days of daily peaks), the recent ones in detail for alert rules and idle GPUs.
DEMO_DAYS = 10
DETAIL_DAYS = 3
#: Ingested and rolled up this much at a time, oldest first.
CHUNK = dt.timedelta(hours=6)
#: The saturated nodes climb this many utilisation points a day, to about 97 % now.
HOT_RISE_PER_DAY = 2.0
#: The spend jump adds this share of the tenant's usual hourly spend, every hour.
SPEND_JUMP = 0.3
#: … for this many whole days up to now.
SPEND_JUMP_DAYS = 3
#: A stopped feed that sent anything in this many days before its window has been seeded.
FEED_MEMORY_DAYS = 30
#: GPUs (inventory GpuDevices) also report their own series for this last stretch, every
#: ``GPU_SERIES_STEP``; before it, their node's aggregate only (per-GPU points at the nodes'
#: pace would multiply the seed's volume several times over).
GPU_SERIES_HOURS = 6
GPU_SERIES_STEP = dt.timedelta(minutes=15)
#: On the node whose hostname ends so, the last GPU idles while the others carry the load.
_IDLE_GPU_NODE = "gpu-main-01"
#: On the node whose hostname ends so, this GPU reports an XID error for the last hours.
_XID_GPU = ("gpu-hot-02", 3)
XID_CODE = 79  # "GPU has fallen off the bus"
XID_HOURS = 3
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


def _gpu_values(
    node: ComputeResource,
    profile: str,
    moment: dt.datetime,
    now: dt.datetime,
    *,
    quirks: bool = True,
) -> list[dict[str, float]]:
    """Each GPU's values at ``moment`` (one dict per GPU, by index): the node's load shared out
    with a little spread and, with ``quirks``, one idle GPU on the ``_IDLE_GPU_NODE`` and the
    XID GPU's error."""
    key = node.hostname
    jitter = _noise(key, moment)
    if profile == "idle":
        utilization = 2 + jitter
    elif profile == "saturated":
        age_days = (now - moment).total_seconds() / 86400
        utilization = 97 - HOT_RISE_PER_DAY * max(age_days, 0) + 2 * jitter
    else:
        utilization = 12 + 70 * _daylight(moment) + 6 * jitter
    gpus = max(node.gpu_count, 1)
    idle_gpu = gpus - 1 if quirks and gpus > 1 and key.endswith(_IDLE_GPU_NODE) else None
    xid_gpu = _XID_GPU[1] if quirks and key.endswith(_XID_GPU[0]) else None
    xid_now = now - dt.timedelta(hours=XID_HOURS) <= moment
    memory_mib = max(node.gpu_memory_gb, 16) * 1024
    values = []
    for index in range(gpus):
        spread = _noise(f"{key}/{index}", moment)
        if index == idle_gpu:
            busy_pct = _clamp(1.5 + 0.5 * spread, 0, 100)
        elif idle_gpu is not None:
            # The others carry the idle GPU's share: the node's mean stays its load.
            busy_pct = _clamp((gpus * utilization - 1.5) / (gpus - 1) + 2 * spread, 0, 100)
        else:
            busy_pct = _clamp(utilization + 2 * spread, 0, 100)
        busy = busy_pct / 100
        gpu = {
            "gpu_utilization": round(busy_pct, 2),
            "gpu_memory_used_mib": round(memory_mib * (0.05 + 0.85 * busy)),
            "gpu_power_watts": round(60 + 600 * busy + 10 * spread, 1),
            "gpu_temperature_celsius": round(_clamp(32 + 46 * busy + 2 * spread, 20, 95), 1),
            "gpu_tensor_active": round(_clamp(busy_pct * 0.78 + 3 * spread, 0, 100), 2),
        }
        if xid_gpu is not None:
            gpu["gpu_xid_errors"] = float(XID_CODE if index == xid_gpu and xid_now else 0)
        values.append(gpu)
    return values


def _node_values(gpu_values: list[dict[str, float]]) -> list[tuple[str, float]]:
    """The node's aggregate of its GPUs' values, as the dcgm ingest derives it (mean, sum, max
    per metric: ``metrics.DCGM_FIELDS``)."""
    aggregate = {field.metric.name: field.aggregate for field in DCGM_FIELDS.values()}
    node = []
    for metric in gpu_values[0]:
        column = [gpu[metric] for gpu in gpu_values]
        how = aggregate[metric]
        if how == "mean":
            value = round(math.fsum(column) / len(column), 2)
        elif how == "sum":
            value = round(math.fsum(column), 1)
        else:
            value = max(column)
        node.append((metric, value))
    return node


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


def _moments(start: dt.datetime, detail_start: dt.datetime, end: dt.datetime):
    """Whole hours from ``start`` to ``detail_start``, then every 5 minutes up to ``end``."""
    moment = start.replace(minute=0)
    if moment < start:
        moment += COARSE_STEP
    while moment < min(detail_start, end):
        yield moment
        moment += COARSE_STEP
    moment = max(start, detail_start)
    while moment < end:
        yield moment
        moment += STEP


def _usual_hourly_spend(compute, deployments) -> float:
    """What the tenant's reporting estate costs in an average hour (compute and deployments)."""
    nodes = sum(
        float(node.hourly_cost)
        for node in compute
        if node.status in _REPORTING and node.hourly_cost and node.kind != ComputeKind.GPU_CLUSTER
    )
    return nodes + len(deployments) * (2 + 1.5 / 2)


@dataclass(frozen=True)
class _Estate:
    """What the samples are about: the tenant's reporting compute and its deployments."""

    gpu_nodes: list[tuple[ComputeResource, str]]  # (node, profile)
    gpu_ids: dict[tuple[int, int], int]  # (node id, GPU index) → GpuDevice id (whole GPUs)
    gpu_quirks: bool  # the idle GPU and the XID errors (not in a calm estate)
    costly_compute: list[tuple[str, float]]  # (resource, hourly cost)
    deployments: list[str]
    spiking: str | None
    scaling: str | None
    #: From ``jump_from`` on, the scaling deployment costs ``jump`` more an hour.
    jump_from: dt.datetime
    jump: float


def _estate(tenant, *, now: dt.datetime, spend_jump: bool, calm: bool) -> _Estate:
    compute = list(
        ComputeResource.objects.filter(tenant=tenant).only(
            "hostname", "kind", "status", "cluster_id", "gpu_count", "gpu_memory_gb", "hourly_cost"
        )
    )
    cluster_names = {c.pk: c.hostname for c in compute if c.kind == ComputeKind.GPU_CLUSTER}
    reporting = [node for node in compute if node.status in _REPORTING]
    deployments = list(
        Deployment.objects.filter(tenant=tenant).order_by("name").values("name", "environment")
    )
    production = [row["name"] for row in deployments if row["environment"] == "production"]
    scaling = production[1] if spend_jump and len(production) > 1 else None
    last_day = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return _Estate(
        gpu_nodes=[
            (node, "diurnal" if calm else _gpu_profile(node, cluster_names))
            for node in reporting
            if node.kind == ComputeKind.GPU_NODE
        ],
        gpu_quirks=not calm,
        gpu_ids={
            (compute_id, index): pk
            for pk, compute_id, index in GpuDevice.objects.filter(
                tenant=tenant, mig_instance=""
            ).values_list("pk", "compute_id", "index")
        },
        costly_compute=[
            (f"compute:{node.hostname}", float(node.hourly_cost))
            for node in reporting
            if node.hourly_cost and node.kind != ComputeKind.GPU_CLUSTER
        ],
        deployments=[row["name"] for row in deployments],
        spiking=production[0] if production and not calm else None,
        scaling=scaling,
        jump_from=last_day - dt.timedelta(days=SPEND_JUMP_DAYS),
        jump=round(SPEND_JUMP * _usual_hourly_spend(compute, deployments), 2) if scaling else 0.0,
    )


def _samples(estate: _Estate, moments, *, now: dt.datetime) -> list[dict]:
    samples: list[dict] = []

    def add(resource: str, metric: str, moment: dt.datetime, value: float) -> None:
        samples.append({"resource": resource, "metric": metric, "ts": moment, "value": value})

    gpus_from = now - dt.timedelta(hours=GPU_SERIES_HOURS)
    gpu_step_minutes = int(GPU_SERIES_STEP.total_seconds() // 60)
    for moment in moments:
        on_the_hour = moment.minute == 0
        for node, profile in estate.gpu_nodes:
            gpu_values = _gpu_values(node, profile, moment, now, quirks=estate.gpu_quirks)
            for metric, value in _node_values(gpu_values):
                add(f"compute:{node.hostname}", metric, moment, value)
            if moment < gpus_from or moment.minute % gpu_step_minutes:
                continue
            for index, values in enumerate(gpu_values):
                gpu_id = estate.gpu_ids.get((node.pk, index))
                if gpu_id is not None:
                    for metric, value in values.items():
                        samples.append(
                            {"gpu_id": gpu_id, "metric": metric, "ts": moment, "value": value}
                        )
        if on_the_hour:
            for resource, cost in estate.costly_compute:
                add(resource, "cost_per_hour", moment, cost)
        for name in estate.deployments:
            resource = f"deployment:{name}"
            spike = name == estate.spiking
            for metric, value in _deployment_samples(name, spike, moment, now):
                add(resource, metric, moment, value)
            if on_the_hour:
                cost = 2 + 1.5 * _daylight(moment)
                if name == estate.scaling and moment >= estate.jump_from:
                    cost += estate.jump
                add(resource, "cost_per_hour", moment, round(cost, 2))
    for sample in samples:
        sample["ts"] = sample["ts"].isoformat()
    return samples


def _chunks(moments) -> list[list[dt.datetime]]:
    """The moments in groups of whole ``CHUNK`` periods of the UTC clock (no hour is split).

    Only where an hour's rollup scans the tenant's samples (the unpartitioned SQLite store):
    on PostgreSQL the rollup reads one day's partition anyway, and each batch costs a fixed
    overhead, so the moments go in one group.
    """
    moments = list(moments)
    if sample_store().partitioned:
        return [moments]
    chunks: dict[int, list[dt.datetime]] = {}
    for moment in moments:
        chunks.setdefault(int(moment.timestamp()) // int(CHUNK.total_seconds()), []).append(moment)
    return list(chunks.values())


def seed_telemetry(
    tenant,
    *,
    days: int = 3,
    detail_days: int = DETAIL_DAYS,
    spend_jump: bool = False,
    calm: bool = False,
    quiet_days: int = 0,
    now: dt.datetime | None = None,
) -> dict:
    """Ingest ``days`` of samples for the tenant's estate (5-minute ones for the last
    ``detail_days``, hourly before) and roll them up.

    On SQLite, oldest first, ``CHUNK`` at a time, each rolled up once ingested, as a live feed
    would be: an hour's rollup scans the tenant's samples, so it then reads only those up to it,
    which keeps ten days nearly as quick to seed as three. On PostgreSQL, all in one go (see
    ``_chunks``).

    ``calm`` and ``quiet_days``: see the module's docstring.
    """
    now = (now or timezone.now()) - dt.timedelta(days=quiet_days)
    # Whole 5-minute steps, ending at the last one before now.
    end = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=now.minute % 5)
    start = end - dt.timedelta(days=days)
    detail_start = end - dt.timedelta(days=detail_days)
    received = inserted = hours = rollups = 0
    with tenant_scope(tenant.id):
        fed_since = start - dt.timedelta(days=FEED_MEMORY_DAYS)
        if quiet_days and sample_store().resources_reporting(tenant_id=tenant.id, since=fed_since):
            # The feed stopped: what it sent is stored, and nothing has come since.
            return {"samples": 0, "inserted": 0, "hours": 0, "rollups": 0}
        estate = _estate(tenant, now=now, spend_jump=spend_jump, calm=calm)
        for moments in _chunks(_moments(start, detail_start, end + STEP)):
            samples = _samples(estate, moments, now=now)
            for offset in range(0, len(samples), MAX_BATCH):
                result = telemetry_ingest_batch(
                    tenant=tenant, samples=samples[offset : offset + MAX_BATCH], now=now
                )
                received += result.received
                inserted += result.inserted
            rolled = telemetry_rollup_pending(tenant=tenant, now=now)
            hours += rolled["hours"]
            rollups += rolled["rollups"]
    return {"samples": received, "inserted": inserted, "hours": hours, "rollups": rollups}
