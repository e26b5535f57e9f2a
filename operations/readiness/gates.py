"""Pilot → production gates of AI systems: the criteria of ``gates.yaml``, evaluated through the
owning contexts' selectors, for one system or many at a fixed number of queries; the stage-change
guard inventory calls; and an msp_admin's override, audited.

An override covers the criteria that failed when it was granted, during the system's current
pilot (granted after ``stage_changed_at``): a criterion that fails later blocks again.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from operations.compliance import selectors as compliance
from operations.incidents import selectors as incidents
from operations.inventory import selectors as inventory
from operations.inventory.models import AISystem, Environment, RiskTier, Stage
from operations.inventory.services import StageChangeRefused
from operations.optimisation import selectors as optimisation
from operations.readiness.models import GateOverride
from operations.telemetry import selectors as telemetry
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from tenants.audit import audited_create

GATES_FILE = Path(__file__).with_name("gates.yaml")

READY, OVERRIDDEN, BLOCKED = "ready", "overridden", "blocked"
GATE_STATUSES = (READY, OVERRIDDEN, BLOCKED)


@dataclass(frozen=True)
class GateCriterionDefinition:
    key: str
    title: str
    explanation: str
    applies_when: str


@dataclass(frozen=True)
class GateDefinitions:
    version: int
    settings: dict
    criteria: tuple[GateCriterionDefinition, ...]


@cache
def gate_definitions() -> GateDefinitions:
    """The criteria as data (``gates.yaml``), in the order they are shown."""
    document = yaml.safe_load(GATES_FILE.read_text(encoding="utf-8"))
    return GateDefinitions(
        version=document["version"],
        settings=document["settings"],
        criteria=tuple(GateCriterionDefinition(**row) for row in document["criteria"]),
    )


@dataclass(frozen=True)
class GateReport:
    """One system's gates: ``criteria`` as dicts (key, title, explanation, applies, passed,
    detail, links), ``override`` its latest GateOverride (or None), ``override_in_force``
    whether that override clears the move now."""

    ai_system_id: int
    stage: str
    stage_changed_at: dt.datetime | None
    criteria: list[dict]
    override: GateOverride | None = None
    override_in_force: bool = False
    now: dt.datetime = field(default_factory=timezone.now)

    @property
    def passed(self) -> bool:
        return all(criterion["passed"] for criterion in self.criteria)

    @property
    def failing(self) -> list[dict]:
        return [criterion for criterion in self.criteria if not criterion["passed"]]

    @property
    def cleared(self) -> bool:
        """Pilot → production may go ahead: every gate passes, or an override covers them."""
        return self.passed or self.override_in_force

    @property
    def status(self) -> str:
        if self.passed:
            return READY
        return OVERRIDDEN if self.override_in_force else BLOCKED

    @property
    def days_in_pilot(self) -> int | None:
        if self.stage != Stage.PILOT or self.stage_changed_at is None:
            return None
        return max(0, (self.now - self.stage_changed_at).days)


# --- What the criteria read, for many systems at once ---------------------------------------------


@dataclass
class _Facts:
    datasets: dict[int, list[dict]]
    deployments: dict[int, list[dict]]
    rules: dict[int, list[str]]
    incidents: dict[tuple[str, int], list[dict]]
    findings: dict[tuple[str, int], list[dict]]
    forecasts: dict[int, list[dict]]
    cluster_nodes: dict[int, list[int]]
    utilisation: dict[int, list[float]]
    settings: dict


def _gather(systems: list[AISystem], now: dt.datetime) -> _Facts:
    """Everything the criteria read about ``systems``: ten queries, whatever their number."""
    settings = gate_definitions().settings
    system_ids = [system.pk for system in systems]
    tenant_ids = sorted({system.tenant_id for system in systems})
    tenant_of = {system.pk: system.tenant_id for system in systems}
    deployments = inventory.ai_system_deployments_for(ai_system_ids=system_ids)
    flat = [
        {**row, "tenant_id": tenant_of[system_id]}
        for system_id, rows in deployments.items()
        for row in rows
    ]
    deployment_ids = [row["id"] for row in flat]
    compute_ids = {row["compute_id"] for row in flat if row["compute_id"] is not None}
    cluster_ids = {row["compute__cluster_id"] for row in flat if row["compute__cluster_id"]}
    cluster_nodes = inventory.compute_cluster_nodes_for(cluster_ids=sorted(compute_ids))
    pool_ids = compute_ids | cluster_ids | {n for nodes in cluster_nodes.values() for n in nodes}
    window = dt.timedelta(days=settings["utilisation_window_days"])
    return _Facts(
        datasets=inventory.ai_system_datasets_for(ai_system_ids=system_ids),
        deployments=deployments,
        rules=incidents.alert_rules_covering(tenant_ids=tenant_ids, deployments=flat),
        incidents=incidents.open_incidents_of_severity_for(
            ai_system_ids=system_ids,
            deployment_ids=deployment_ids,
            severities=tuple(settings["blocking_incident_severities"]),
        ),
        findings=compliance.failing_findings_of_severity_for(
            ai_system_ids=system_ids, deployment_ids=deployment_ids, severity="critical", now=now
        ),
        forecasts=optimisation.capacity_forecasts_for(
            compute_ids=sorted(compute_ids | cluster_ids)
        ),
        cluster_nodes=cluster_nodes,
        utilisation=telemetry.telemetry_hourly_mean_values(
            tenant_ids=tenant_ids,
            resource_kind=ResourceKind.COMPUTE,
            resource_ids=sorted(pool_ids),
            metric=METRICS_BY_NAME["gpu_utilization"],
            start=now - window,
            end=now,
        ),
        settings=settings,
    )


def _link(kind: str, id_: int, label: str) -> dict:
    return {"label": label, "kind": kind, "id": id_}


def _percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0–1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


# --- The criteria: key → (system, facts) → (passed, detail, links) ------------------------------

Outcome = tuple[bool, str, list[dict]]


def _risk_tier_classified(system: AISystem, facts: _Facts) -> Outcome:
    if system.risk_tier == RiskTier.UNCLASSIFIED:
        return False, "The risk tier is not yet classified.", []
    if system.risk_tier == RiskTier.PROHIBITED:
        return False, "Classified as a prohibited practice (Art. 5): it cannot go live.", []
    return True, f"Classified: {RiskTier(system.risk_tier).label}.", []


def _fria_completed(system: AISystem, facts: _Facts) -> Outcome:
    if system.fria_completed_at is None:
        return False, "High risk, and no fundamental-rights impact assessment is recorded.", []
    return True, f"Completed on {system.fria_completed_at:%Y-%m-%d}.", []


def _accountable_owner(system: AISystem, facts: _Facts) -> Outcome:
    if not system.business_owner.strip():
        return False, "No business owner is named.", []
    technical = system.technical_owner.strip() or "none named"
    return True, f"Business owner: {system.business_owner}; technical owner: {technical}.", []


def _datasets_documented(system: AISystem, facts: _Facts) -> Outcome:
    datasets = facts.datasets.get(system.pk, [])
    if not datasets:
        return False, "No dataset is linked to the system.", []
    lacking = []
    for dataset in datasets:
        missing = [
            name
            for name, present in (
                ("provenance", dataset["provenance"].strip()),
                ("residency", dataset["residency_country"]),
            )
            if not present
        ]
        if missing:
            lacking.append((dataset, missing))
    if lacking:
        detail = "; ".join(f"{d['name']}: no {' or '.join(missing)}" for d, missing in lacking)
        links = [_link("dataset", d["id"], d["name"]) for d, _missing in lacking]
        return False, f"{len(lacking)} of {len(datasets)} datasets lack data: {detail}.", links
    links = [_link("dataset", d["id"], d["name"]) for d in datasets]
    return True, f"{len(datasets)} datasets, each with provenance and residency.", links


def _deployment_operable(system: AISystem, facts: _Facts) -> Outcome:
    candidates = [
        row
        for row in facts.deployments.get(system.pk, [])
        if row["environment"] != Environment.DEVELOPMENT
    ]
    if not candidates:
        return False, "No staging or production deployment.", []
    gaps = []
    for row in candidates:
        rules = facts.rules.get(row["id"], [])
        missing = [
            text
            for text, present in (
                ("monitoring off", row["monitoring_enabled"]),
                ("no runbook", row["runbook_url"]),
                ("no alert rule in force", rules),
            )
            if not present
        ]
        if not missing:
            detail = f"{row['name']}: monitoring on, runbook, alert rule '{rules[0]}'."
            return True, detail, [_link("deployment", row["id"], row["name"])]
        gaps.append((row, missing))
    detail = "; ".join(f"{row['name']}: {', '.join(missing)}" for row, missing in gaps)
    return False, f"{detail}.", [_link("deployment", row["id"], row["name"]) for row, _m in gaps]


def _subject_keys(system: AISystem, facts: _Facts) -> list[tuple[str, int]]:
    return [("ai_system", system.pk)] + [
        ("deployment", row["id"]) for row in facts.deployments.get(system.pk, [])
    ]


def _no_major_incident(system: AISystem, facts: _Facts) -> Outcome:
    found: dict[int, dict] = {}
    for key in _subject_keys(system, facts):
        for incident in facts.incidents.get(key, []):
            found[incident["id"]] = incident
    if not found:
        return True, "No open SEV1 or SEV2 incident.", []
    rows = sorted(found.values(), key=lambda row: row["reference"])
    detail = "; ".join(f"{row['reference']} ({row['severity']}) {row['title']}" for row in rows)
    links = [_link("incident", row["id"], row["reference"]) for row in rows]
    return False, f"Open: {detail}.", links


def _no_critical_finding(system: AISystem, facts: _Facts) -> Outcome:
    findings = [row for key in _subject_keys(system, facts) for row in facts.findings.get(key, [])]
    if not findings:
        return True, "No critical check fails.", []
    detail = "; ".join(f"{row['check_code']} on {row['subject_label']}" for row in findings)
    links = [_link("finding", row["id"], row["check_code"]) for row in findings]
    return False, f"Failing: {detail}.", links


def _capacity_headroom(system: AISystem, facts: _Facts) -> Outcome:
    limit = facts.settings["gpu_utilisation_p95_limit"]
    computes = {}
    for row in facts.deployments.get(system.pk, []):
        if row["compute_id"] is not None:
            computes[row["compute_id"]] = row
    problems, links, readings = [], [], []
    for compute_id, row in computes.items():
        hostname = row["compute__hostname"]
        pool = [compute_id, *facts.cluster_nodes.get(compute_id, [])]
        owners = [compute_id] + ([row["compute__cluster_id"]] if row["compute__cluster_id"] else [])
        for owner in owners:
            for forecast in facts.forecasts.get(owner, []):
                problems.append(forecast["title"])
                links.append(_link("recommendation", forecast["id"], forecast["subject_label"]))
        values = [value for member in pool for value in facts.utilisation.get(member, [])]
        if not values:
            readings.append(f"{hostname}: no utilisation data")
            continue
        p95 = _percentile(values, 0.95)
        readings.append(f"{hostname}: p95 GPU utilisation {p95:.0f}%")
        if p95 >= limit:
            problems.append(
                f"{hostname} runs at {p95:.0f}% GPU utilisation at p95 (limit {limit}%)"
            )
            links.append(_link("compute", compute_id, hostname))
    days = facts.settings["utilisation_window_days"]
    if problems:
        return False, f"{'; '.join(problems)}.", links
    return True, f"No capacity forecast; over {days} days, {'; '.join(readings)}.", []


EVALUATORS: dict[str, Callable[[AISystem, _Facts], Outcome]] = {
    "risk_tier_classified": _risk_tier_classified,
    "fria_completed": _fria_completed,
    "accountable_owner": _accountable_owner,
    "datasets_documented": _datasets_documented,
    "deployment_operable": _deployment_operable,
    "no_major_incident": _no_major_incident,
    "no_critical_finding": _no_critical_finding,
    "capacity_headroom": _capacity_headroom,
}

APPLIES_WHEN: dict[str, tuple[Callable[[AISystem, _Facts], bool], str]] = {
    "always": (lambda system, facts: True, ""),
    "high_risk": (
        lambda system, facts: system.risk_tier == RiskTier.HIGH,
        "Applies to high-risk systems only.",
    ),
    "has_compute": (
        lambda system, facts: any(
            row["compute_id"] is not None for row in facts.deployments.get(system.pk, [])
        ),
        "None of its deployments names its compute.",
    ),
}


def _criteria(system: AISystem, facts: _Facts) -> list[dict]:
    criteria = []
    for definition in gate_definitions().criteria:
        applies, why_not = APPLIES_WHEN[definition.applies_when]
        if applies(system, facts):
            passed, detail, links = EVALUATORS[definition.key](system, facts)
        else:
            passed, detail, links = True, f"Not applicable: {why_not[0].lower()}{why_not[1:]}", []
        criteria.append(
            {
                "key": definition.key,
                "title": definition.title,
                "explanation": definition.explanation,
                "applies": applies(system, facts),
                "passed": passed,
                "detail": detail,
                "links": links,
            }
        )
    return criteria


def _override_in_force(system: AISystem, override: GateOverride | None, failing: list[dict]):
    if override is None or system.stage != Stage.PILOT:
        return False
    if system.stage_changed_at is not None and override.granted_at < system.stage_changed_at:
        return False  # granted during an earlier pilot
    covered = {row.get("key") for row in override.failing_criteria if isinstance(row, dict)}
    return {criterion["key"] for criterion in failing} <= covered


def ai_systems_gates(*, ai_systems: list[AISystem], now=None) -> dict[int, GateReport]:
    """{system id: GateReport} for ``ai_systems`` (of any tenants in the active scope), in a
    fixed number of queries whatever their number."""
    if not ai_systems:
        return {}
    now = now or timezone.now()
    facts = _gather(ai_systems, now)
    latest: dict[int, GateOverride] = {}
    overrides = GateOverride.objects.filter(
        ai_system_id__in=[system.pk for system in ai_systems]
    ).select_related("granted_by")
    for override in overrides.order_by("-granted_at", "-id"):
        latest.setdefault(override.ai_system_id, override)
    reports = {}
    for system in ai_systems:
        criteria = _criteria(system, facts)
        override = latest.get(system.pk)
        failing = [criterion for criterion in criteria if not criterion["passed"]]
        reports[system.pk] = GateReport(
            ai_system_id=system.pk,
            stage=system.stage,
            stage_changed_at=system.stage_changed_at,
            criteria=criteria,
            override=override,
            override_in_force=bool(failing) and _override_in_force(system, override, failing),
            now=now,
        )
    return reports


def ai_system_gates(*, tenant, ai_system: AISystem, now=None) -> GateReport:
    """The pilot → production gates of one of ``tenant``'s systems."""
    assert ai_system.tenant_id == tenant.id, "the AI system is not in this tenant"
    return ai_systems_gates(ai_systems=[ai_system], now=now)[ai_system.pk]


# --- The guard inventory runs on every stage change, and the override ---------------------------


def gates_stage_guard(*, ai_system: AISystem, from_stage: str, to_stage: str) -> None:
    """Refuse pilot → production while a gate fails and no override covers it."""
    if (from_stage, to_stage) != (Stage.PILOT, Stage.PRODUCTION):
        return
    report = ai_systems_gates(ai_systems=[ai_system])[ai_system.pk]
    if report.cleared:
        return
    failing = report.failing
    titles = "; ".join(criterion["title"] for criterion in failing)
    raise StageChangeRefused(
        f"'{ai_system.name}' cannot move to production: {len(failing)} readiness "
        f"gate{'s' if len(failing) != 1 else ''} fail ({titles}). "
        "Fix them, or an MSP admin may override with a reason.",
        failing={f"gates.{criterion['key']}": criterion["detail"] for criterion in failing},
    )


@transaction.atomic
def ai_system_gate_override(*, tenant, ai_system: AISystem, user, reason: str) -> GateOverride:
    """Let a pilot move to production despite its failing gates: msp_admin only, with a reason;
    records the criteria it covers and is audited."""
    if not getattr(user, "is_msp_admin", False):
        raise PermissionDenied("Only an MSP admin may override readiness gates.")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Give the reason for the override."]}, code="required")
    if ai_system.stage != Stage.PILOT:
        raise ValidationError(
            {
                "stage": [
                    f"Only a pilot's gates are overridden; this system is in {ai_system.stage}."
                ]
            },
            code="not_pilot",
        )
    report = ai_system_gates(tenant=tenant, ai_system=ai_system)
    if report.passed:
        raise ValidationError("Every gate passes: there is nothing to override.", code="passed")
    override = GateOverride(
        tenant=tenant,
        ai_system=ai_system,
        failing_criteria=[
            {"key": row["key"], "title": row["title"], "detail": row["detail"]}
            for row in report.failing
        ],
        reason=reason,
        granted_by=user,
    )
    return audited_create(tenant=tenant, instance=override)
