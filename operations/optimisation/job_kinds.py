"""The optimisation job kind: ``optimisation_scan`` (nightly per active tenant).

The whole scan commits with the run's checkpoint (``run.once``): a worker killed mid-scan leaves
nothing behind, and the next attempt scans again; a scan that committed is never repeated by a
redelivery. Recommendations are upserts keyed by (tenant, kind, subject) besides.
"""

from __future__ import annotations

from rest_framework import serializers

from msp.api.serializers import StrictSerializer
from operations.jobs.registry import job_kind
from operations.optimisation.conf import default_thresholds
from operations.optimisation.services import optimisation_run_for_tenant


def _percent(**kwargs):
    return serializers.FloatField(required=False, min_value=0, max_value=100, **kwargs)


class ScanParameters(StrictSerializer):
    """Every threshold of ``conf.Thresholds`` may be set for one run; unset ones keep the
    ``OPTIMISATION_*`` settings (or the built-in defaults)."""

    as_of = serializers.DateTimeField(
        required=False, help_text="Scan as of this time (default: when the job runs)."
    )
    window_hours = serializers.IntegerField(
        required=False, min_value=6, max_value=24 * 30, help_text="Idle / right-size window."
    )
    min_coverage = serializers.FloatField(
        required=False, min_value=0.1, max_value=1, help_text="Share of hours with data."
    )
    idle_utilisation = _percent(help_text="Idle below this mean utilisation (%).")
    idle_peak = _percent(help_text="…and no hour's mean above this (%).")
    gpu_idle_utilisation = _percent(help_text="One GPU idle below this mean utilisation (%).")
    gpu_idle_peak = _percent(help_text="…and no hour's mean above this (%).")
    busy_node_utilisation = _percent(
        help_text="…while its node's other GPUs average at least this (%)."
    )
    right_size_utilisation = _percent()
    right_size_peak = _percent()
    right_size_memory = _percent()
    right_size_target = _percent(help_text="Peak utilisation the kept GPUs may reach (%).")
    saturation = serializers.FloatField(
        required=False, min_value=1, max_value=100, help_text="Capacity saturation point (%)."
    )
    forecast_days = serializers.IntegerField(required=False, min_value=2, max_value=90)
    forecast_min_day_hours = serializers.IntegerField(required=False, min_value=1, max_value=24)
    forecast_min_days = serializers.IntegerField(required=False, min_value=2, max_value=90)
    forecast_min_slope = serializers.FloatField(required=False, min_value=0, max_value=100)
    forecast_horizon_days = serializers.IntegerField(required=False, min_value=1, max_value=730)
    anomaly_history_days = serializers.IntegerField(required=False, min_value=3, max_value=90)
    anomaly_min_days = serializers.IntegerField(required=False, min_value=2, max_value=90)
    anomaly_k = serializers.FloatField(required=False, min_value=0.5, max_value=10)
    anomaly_min_relative = serializers.FloatField(required=False, min_value=0, max_value=10)
    anomaly_sustained_days = serializers.IntegerField(required=False, min_value=1, max_value=30)
    reopen_change = serializers.FloatField(required=False, min_value=0.05, max_value=10)


@job_kind(
    "optimisation_scan",
    title="Optimisation scan",
    description=(
        "Idle GPUs (whole nodes, and single GPUs of busy nodes), right-sizing, cost anomalies, "
        "capacity forecast and retired systems: refreshes the tenant's recommendations from "
        "its telemetry rollups and inventory."
    ),
    parameters=ScanParameters,
    nightly=True,
)
def optimisation_scan(run, parameters: dict) -> dict:
    overrides = {key: value for key, value in parameters.items() if key != "as_of"}
    thresholds = default_thresholds().with_overrides(**overrides)
    as_of = parameters.get("as_of")
    if as_of:
        as_of = serializers.DateTimeField().to_internal_value(as_of)
    run.progress(5, "Scanning telemetry rollups and inventory")
    tenant = run.tenant

    def scan() -> dict:
        return optimisation_run_for_tenant(tenant=tenant, as_of=as_of, thresholds=thresholds)

    summary = run.once("scan", scan)
    run.log(
        f"Found {summary['found']} condition(s): {summary['created']} new, "
        f"{summary['refreshed']} refreshed, {summary['reopened']} reopened, "
        f"{summary['superseded']} superseded."
    )
    return summary
