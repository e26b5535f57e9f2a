"""Live readiness signals. A stub until the signals helper's module lands: every key of the
contract, each with no data (value None), never a made-up value."""

from __future__ import annotations

from dataclasses import dataclass, field

SIGNAL_UNITS: dict[str, str] = {
    "telemetry_coverage": "%",
    "gpu_headroom_production": "%",
    "capacity_days_until_full": "days",
    "production_sites_redundant": "%",
    "api_tokens_with_expiry": "%",
    "dataset_metadata_complete": "%",
    "personal_data_residency_match": "%",
    "compliance_score": "%",
    "open_critical_findings": "count",
    "ai_systems_risk_classified": "%",
    "ai_systems_owned": "%",
    "production_deployments_operable": "%",
    "mttr_90d": "hours",
    "sla_attainment_90d": "%",
    "idle_gpu_share": "%",
    "open_savings_share": "%",
    "cloud_spend_vs_budget": "%",
}
SIGNAL_KEYS: tuple[str, ...] = tuple(SIGNAL_UNITS)


@dataclass(frozen=True)
class SignalReading:
    key: str
    value: float | None
    unit: str
    explanation: str
    links: tuple[dict, ...] = ()
    detail: dict = field(default_factory=dict)


def readiness_signal(*, tenant, key, now=None) -> SignalReading:
    return SignalReading(key=key, value=None, unit=SIGNAL_UNITS[key], explanation="No data yet.")


def readiness_signals(*, tenant, now=None) -> dict[str, SignalReading]:
    return {key: readiness_signal(tenant=tenant, key=key, now=now) for key in SIGNAL_KEYS}
