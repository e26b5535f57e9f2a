"""The telemetry metric catalogue: what may be ingested, for which resources, in which range.

Each metric has a stable small-integer ``code`` (the column stored with every sample, so the
hot table and its primary key stay narrow) and a ``name`` used everywhere in the API. Codes are
never reused or renumbered: add new metrics with new codes.

dcgm-exporter fields map onto the GPU metrics of a compute resource. One host exports one series
per GPU; they are combined into one sample per host, metric and time (``aggregate``): mean for
utilisation and activity, sum for memory and power, max for temperature and the last XID error.
DCGM's profiling ratios (0–1) are stored as percentages.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import models


class ResourceKind(models.IntegerChoices):
    COMPUTE = 1, "compute"
    DEPLOYMENT = 2, "deployment"
    #: One GPU (or MIG instance) of a compute resource: resource id = inventory GpuDevice id.
    GPU = 3, "gpu"


RESOURCE_KIND_BY_NAME: dict[str, int] = {"compute": 1, "deployment": 2, "gpu": 3}
RESOURCE_KIND_NAMES: dict[int, str] = {1: "compute", 2: "deployment", 3: "gpu"}
#: For messages: "Unknown compute resource 'x'", "does not apply to deployments".
RESOURCE_KIND_LABELS: dict[int, str] = {1: "compute resource", 2: "deployment", 3: "GPU"}

_COMPUTE = frozenset({ResourceKind.COMPUTE.value})
_DEPLOYMENT = frozenset({ResourceKind.DEPLOYMENT.value})
_BOTH = _COMPUTE | _DEPLOYMENT
# GPU metrics: a series per GPU, and the node's aggregate (derived at ingest) per compute.
_GPU = _COMPUTE | frozenset({ResourceKind.GPU.value})


@dataclass(frozen=True)
class Metric:
    code: int
    name: str
    unit: str
    minimum: float
    maximum: float
    kinds: frozenset[int]
    description: str

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "unit": self.unit,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "resources": sorted(RESOURCE_KIND_NAMES[kind] for kind in self.kinds),
            "description": self.description,
        }


METRICS: tuple[Metric, ...] = (
    Metric(1, "gpu_utilization", "%", 0, 100, _GPU, "GPU utilisation, mean over the GPUs."),
    Metric(2, "gpu_memory_used_mib", "MiB", 0, 1e9, _GPU, "Frame buffer used, all GPUs."),
    Metric(3, "gpu_memory_free_mib", "MiB", 0, 1e9, _GPU, "Frame buffer free, all GPUs."),
    Metric(4, "gpu_power_watts", "W", 0, 1e7, _GPU, "Power draw, all GPUs."),
    Metric(5, "gpu_temperature_celsius", "°C", -50, 150, _GPU, "Hottest GPU temperature."),
    Metric(6, "gpu_xid_errors", "code", 0, 1e6, _GPU, "Last XID error code (0: none)."),
    Metric(7, "gpu_graphics_engine_active", "%", 0, 100, _GPU, "Graphics engine active."),
    Metric(8, "gpu_tensor_active", "%", 0, 100, _GPU, "Tensor core pipes active."),
    Metric(20, "inference_latency_p95_ms", "ms", 0, 3.6e6, _DEPLOYMENT, "Latency, p95."),
    Metric(21, "requests_per_second", "req/s", 0, 1e9, _DEPLOYMENT, "Inference requests."),
    Metric(22, "error_rate", "%", 0, 100, _DEPLOYMENT, "Share of requests that failed."),
    Metric(30, "cost_per_hour", "currency/h", 0, 1e7, _BOTH, "Running cost per hour."),
)


def telemetry_sampling_interval() -> dt.timedelta:
    """How often a resource is expected to report each metric (the setting
    ``TELEMETRY_SAMPLING_INTERVAL_SECONDS``): what a window must span twice to tell anything."""
    return dt.timedelta(seconds=settings.TELEMETRY_SAMPLING_INTERVAL_SECONDS)


METRICS_BY_NAME: dict[str, Metric] = {metric.name: metric for metric in METRICS}
METRICS_BY_CODE: dict[int, Metric] = {metric.code: metric for metric in METRICS}
METRIC_CHOICES: list[tuple[int, str]] = [(metric.code, metric.name) for metric in METRICS]


@dataclass(frozen=True)
class DcgmField:
    """How one dcgm-exporter field becomes a metric of the host."""

    metric: Metric
    aggregate: str  # "mean", "sum" or "max" over the host's GPUs
    scale: float = 1.0


DCGM_FIELDS: dict[str, DcgmField] = {
    "DCGM_FI_DEV_GPU_UTIL": DcgmField(METRICS_BY_NAME["gpu_utilization"], "mean"),
    "DCGM_FI_DEV_FB_USED": DcgmField(METRICS_BY_NAME["gpu_memory_used_mib"], "sum"),
    "DCGM_FI_DEV_FB_FREE": DcgmField(METRICS_BY_NAME["gpu_memory_free_mib"], "sum"),
    "DCGM_FI_DEV_POWER_USAGE": DcgmField(METRICS_BY_NAME["gpu_power_watts"], "sum"),
    "DCGM_FI_DEV_GPU_TEMP": DcgmField(METRICS_BY_NAME["gpu_temperature_celsius"], "max"),
    "DCGM_FI_DEV_XID_ERRORS": DcgmField(METRICS_BY_NAME["gpu_xid_errors"], "max"),
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": DcgmField(
        METRICS_BY_NAME["gpu_graphics_engine_active"], "mean", 100.0
    ),
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": DcgmField(
        METRICS_BY_NAME["gpu_tensor_active"], "mean", 100.0
    ),
}
