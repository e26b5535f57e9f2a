"""Detector thresholds: Django settings (``OPTIMISATION_*``) give the defaults, a scan's job
parameters may override any of them for one run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from django.conf import settings

#: Hours in an average month: a monthly saving is hourly cost × this × the fraction saved.
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class Thresholds:
    #: Idle GPU and right-sizing look at this many hours before the scan's time.
    window_hours: int = 72
    #: Share of the window's hours that must have telemetry before a node is judged.
    min_coverage: float = 0.8
    #: Idle: mean GPU utilisation under this (%), and no hour's mean above ``idle_peak``.
    idle_utilisation: float = 5.0
    idle_peak: float = 15.0
    #: Idle GPU on a busy node (per-GPU telemetry): one GPU's mean utilisation under
    #: ``gpu_idle_utilisation`` (%) with no hour's mean above ``gpu_idle_peak``, while the mean
    #: of the node's other GPUs is at least ``busy_node_utilisation``.
    gpu_idle_utilisation: float = 5.0
    gpu_idle_peak: float = 15.0
    busy_node_utilisation: float = 50.0
    #: Right-size: mean utilisation under this, no hour's mean above ``right_size_peak``, and
    #: memory used under ``right_size_memory`` % of the node's GPU memory (mean and peak hour).
    right_size_utilisation: float = 30.0
    right_size_peak: float = 50.0
    right_size_memory: float = 40.0
    #: The GPUs a right-sized node keeps run its peak at no more than this (%).
    right_size_target: float = 80.0
    #: Capacity: daily peaks over ``forecast_days`` days; saturated at ``saturation`` %.
    forecast_days: int = 14
    saturation: float = 90.0
    #: A day counts for the trend with at least this many hours of telemetry.
    forecast_min_day_hours: int = 12
    #: A trend needs this many days and a rise of at least ``forecast_min_slope`` points a day.
    forecast_min_days: int = 5
    forecast_min_slope: float = 0.25
    #: Report a forecast reaching saturation within this many days.
    forecast_horizon_days: int = 60
    #: Cost anomaly: the last whole day against the median of up to ``anomaly_history_days``
    #: earlier days (at least ``anomaly_min_days``), outside median ± max(k · 1.4826 · MAD,
    #: ``anomaly_min_relative`` · median).
    anomaly_history_days: int = 28
    anomaly_min_days: int = 7
    anomaly_k: float = 3.0
    anomaly_min_relative: float = 0.2
    #: Only spend above the band this many days in a row gets a monthly saving projected.
    anomaly_sustained_days: int = 3
    #: A dismissed recommendation reopens when its saving grows by this share (0.5: +50 %),
    #: or a dismissed forecast's days to saturation fall to this share of what they were.
    reopen_change: float = 0.5
    #: Currency when the resource's cloud account does not name one.
    currency: str = "USD"

    def with_overrides(self, **overrides) -> Thresholds:
        known = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in overrides.items() if k in known and v is not None})

    def as_dict(self) -> dict:
        return asdict(self)


def default_thresholds() -> Thresholds:
    """The defaults, with any ``OPTIMISATION_<NAME>`` setting applied."""
    base = Thresholds()
    overrides = {
        f.name: getattr(settings, f"OPTIMISATION_{f.name.upper()}")
        for f in fields(base)
        if hasattr(settings, f"OPTIMISATION_{f.name.upper()}")
    }
    return base.with_overrides(**overrides)
