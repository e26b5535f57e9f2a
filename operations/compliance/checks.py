"""The automated checks: a registry of set-based functions over one tenant's estate.

A scan loads the tenant's estate once (``Estate.load``: one query each for AI systems,
deployments with their compute, datasets, dataset usage and serious incidents), and every
check is a pure function of that snapshot. The number of queries per scan is therefore
constant, whatever the number of systems, deployments or datasets.

Each check declares its code, title, severity, the subject type it judges, and the controls
it maps to (``"<framework code>:<control code>"``, e.g. ``"eu-ai-act:art-14"``). It returns
one result per subject of that type: pass, fail or not applicable, with a detail line.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.utils import timezone

from operations.compliance.models import CheckSeverity, FindingStatus, SubjectType
from operations.incidents.models import Incident
from operations.inventory.models import (
    AISystem,
    AISystemDataset,
    Dataset,
    Deployment,
    Provenance,
    RiskTier,
    Stage,
)

# Plain strings, not enum members: these are compared and copied for every subject.
PASS, FAIL, NA = (
    str(status.value)
    for status in (FindingStatus.PASS, FindingStatus.FAIL, FindingStatus.NOT_APPLICABLE)
)
RETIRED, PRODUCTION = str(Stage.RETIRED.value), str(Stage.PRODUCTION.value)
HIGH, PROHIBITED = str(RiskTier.HIGH.value), str(RiskTier.PROHIBITED.value)
UNCLASSIFIED = str(RiskTier.UNCLASSIFIED.value)

#: How old a risk review or vendor assessment may be and still count as current.
REVIEW_MAX_AGE = dt.timedelta(days=365)
#: Art. 26(6) / Art. 19: logs of high-risk systems are kept at least six months.
MIN_LOG_RETENTION_DAYS = 183

# Data residency groups a tenant's ``data_residency`` may name (besides country codes).
_EU = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE"
EU_COUNTRIES = frozenset(_EU.split(" "))
RESIDENCY_GROUPS: dict[str, frozenset[str]] = {
    "EU": EU_COUNTRIES,
    "EEA": EU_COUNTRIES | {"IS", "LI", "NO"},
    "UK": frozenset({"GB"}),
}


def approved_countries(data_residency: str) -> frozenset[str] | None:
    """The country codes a residency such as ``"EU"``, ``"DE,FR"`` or ``"EEA, CH"`` allows;
    None when the tenant has no residency policy."""
    tokens = [
        token.strip().upper() for token in (data_residency or "").replace(";", ",").split(",")
    ]
    tokens = [token for token in tokens if token]
    if not tokens:
        return None
    countries: set[str] = set()
    for token in tokens:
        countries |= RESIDENCY_GROUPS.get(token, {token} if len(token) == 2 else set())
    return frozenset(countries)


# --- The snapshot a scan judges -------------------------------------------------------------------

SYSTEM_FIELDS = (
    "id",
    "name",
    "purpose",
    "business_owner",
    "technical_owner",
    "stage",
    "risk_tier",
    "risk_classified_at",
    "risk_reviewed_at",
    "provenance",
    "vendor",
    "model_version",
    "human_oversight",
    "human_overseer",
    "user_facing",
    "generative",
    "annex_iii_area",
    "technical_documentation_url",
    "fria_required",
    "fria_completed_at",
    "eu_database_id",
    "vendor_assessed_at",
    "ai_disclosure",
)
DEPLOYMENT_FIELDS = (
    "id",
    "name",
    "ai_system_id",
    "model_version",
    "environment",
    "endpoint",
    "monitoring_enabled",
    "logging_enabled",
    "log_retention_days",
    "runbook_url",
    "approved_by",
    "compute_id",
    "compute__hostname",
    "compute__status",
    "compute__gpu_count",
)
DATASET_FIELDS = (
    "id",
    "name",
    "owner",
    "provenance",
    "licence",
    "residency_country",
    "personal_data",
    "quality_score",
    "last_validated_at",
)
INCIDENT_FIELDS = (
    "id",
    "reference",
    "title",
    "serious_kind",
    "aware_at",
    "regulator_deadline",
    "regulator_notified_at",
)


@dataclass
class Estate:
    """One tenant's estate as plain rows, loaded with a constant number of queries."""

    tenant_id: int
    now: dt.datetime
    approved: frozenset[str] | None
    systems: list[dict]
    deployments: list[dict]
    datasets: list[dict]
    usage: list[dict]
    serious_incidents: list[dict]
    systems_by_id: dict[int, dict] = field(init=False)
    deployments_by_system: dict[int, list[dict]] = field(init=False)
    datasets_by_id: dict[int, dict] = field(init=False)
    usage_by_system: dict[int, list[dict]] = field(init=False)

    def __post_init__(self):
        self.systems_by_id = {row["id"]: row for row in self.systems}
        self.deployments_by_system = defaultdict(list)
        for row in self.deployments:
            self.deployments_by_system[row["ai_system_id"]].append(row)
        self.datasets_by_id = {row["id"]: row for row in self.datasets}
        self.usage_by_system = defaultdict(list)
        for row in self.usage:
            self.usage_by_system[row["ai_system_id"]].append(row)

    @property
    def today(self) -> dt.date:
        return timezone.localdate(self.now)

    @classmethod
    def load(cls, *, tenant, now: dt.datetime) -> Estate:
        """Call inside the tenant's scope."""
        tenant_id = tenant.id
        return cls(
            tenant_id=tenant_id,
            now=now,
            approved=approved_countries(tenant.data_residency),
            systems=list(AISystem.objects.filter(tenant_id=tenant_id).values(*SYSTEM_FIELDS)),
            deployments=list(
                Deployment.objects.filter(tenant_id=tenant_id).values(*DEPLOYMENT_FIELDS)
            ),
            datasets=list(Dataset.objects.filter(tenant_id=tenant_id).values(*DATASET_FIELDS)),
            usage=list(
                AISystemDataset.objects.filter(tenant_id=tenant_id).values(
                    "ai_system_id", "dataset_id", "usage"
                )
            ),
            serious_incidents=list(
                Incident.objects.filter(tenant_id=tenant_id, serious=True).values(*INCIDENT_FIELDS)
            ),
        )


# --- The registry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    subject_id: int
    label: str
    status: str
    detail: str


@dataclass(frozen=True)
class Check:
    code: str
    title: str
    description: str
    severity: str
    subject_type: str
    controls: tuple[str, ...]
    func: Callable[[Estate], Iterable[Result]]
    #: Failures may be accepted by a waiver (never for prohibited practices).
    waivable: bool = True
    #: A new failure opens (or adds to) an incident.
    opens_incident: bool = False

    def run(self, estate: Estate) -> list[Result]:
        return list(self.func(estate))

    def controls_by_framework(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = defaultdict(list)
        for reference in self.controls:
            framework, control = reference.split(":", 1)
            grouped[framework].append(control)
        return dict(grouped)


_CHECKS: dict[str, Check] = {}


def check(
    code: str,
    *,
    title: str,
    severity: str,
    subject_type: str,
    controls: tuple[str, ...],
    waivable: bool = True,
    opens_incident: bool = False,
):
    """Register a check function; its docstring is the check's description."""

    def decorate(func):
        if code in _CHECKS:
            raise ValueError(f"compliance check {code!r} is registered twice")
        _CHECKS[code] = Check(
            code=code,
            title=title,
            description=" ".join((func.__doc__ or "").split()),
            severity=severity,
            subject_type=subject_type,
            controls=controls,
            func=func,
            waivable=waivable,
            opens_incident=opens_incident,
        )
        return func

    return decorate


def all_checks() -> list[Check]:
    return list(_CHECKS.values())


def get_check(code: str) -> Check | None:
    return _CHECKS.get(code)


# --- Helpers ----------------------------------------------------------------------------------


def _live(system: dict) -> bool:
    return system["stage"] != RETIRED


def _missing(row: dict, names: dict[str, str]) -> list[str]:
    return [label for name, label in names.items() if not (row.get(name) or "").strip()]


def _systems(estate: Estate, applies, judge) -> Iterable[Result]:
    """One result per AI system: ``judge(system)`` → (ok, detail) where ``applies`` holds."""
    for system in estate.systems:
        applicable = applies(system)
        if applicable is not True:
            yield Result(system["id"], system["name"], NA, applicable or "Not applicable.")
            continue
        ok, detail = judge(system)
        yield Result(system["id"], system["name"], PASS if ok else FAIL, detail)


def _production_deployments(estate: Estate, judge) -> Iterable[Result]:
    for deployment in estate.deployments:
        if deployment["environment"] != PRODUCTION:
            yield Result(
                deployment["id"],
                deployment["name"],
                NA,
                f"Not a production deployment ({deployment['environment']}).",
            )
            continue
        ok, detail = judge(deployment)
        yield Result(deployment["id"], deployment["name"], PASS if ok else FAIL, detail)


def _retired(system: dict) -> bool | str:
    return True if _live(system) else "Retired."


# --- AI system checks -------------------------------------------------------------------------


@check(
    "ai_system.accountable_owner",
    title="Every AI system has an accountable owner",
    severity=CheckSeverity.MEDIUM,
    subject_type=SubjectType.AI_SYSTEM,
    controls=("eu-ai-act:art-26", "iso-42001:A.3.2", "iso-42001:A.10.2", "nist-ai-rmf:GOVERN-2"),
)
def accountable_owner(estate: Estate):
    """Every AI system that is not retired names a business owner and a technical owner."""

    def judge(system):
        missing = _missing(
            system, {"business_owner": "business owner", "technical_owner": "technical owner"}
        )
        if missing:
            return False, f"No {' and no '.join(missing)} is named."
        return (
            True,
            f"Owned by {system['business_owner']} (technical: {system['technical_owner']}).",
        )

    return _systems(estate, _retired, judge)


@check(
    "ai_system.documented_purpose",
    title="Every AI system has a documented purpose",
    severity=CheckSeverity.LOW,
    subject_type=SubjectType.AI_SYSTEM,
    controls=("eu-ai-act:art-13", "iso-42001:A.9.4", "iso-42001:A.6.2.2", "nist-ai-rmf:MAP-1"),
)
def documented_purpose(estate: Estate):
    """Every AI system that is not retired records its intended purpose."""
    return _systems(
        estate,
        _retired,
        lambda s: (
            (True, "Purpose documented.")
            if s["purpose"].strip()
            else (False, "No intended purpose is recorded.")
        ),
    )


@check(
    "ai_system.risk_classified",
    title="The EU AI Act risk tier is classified",
    severity=CheckSeverity.HIGH,
    subject_type=SubjectType.AI_SYSTEM,
    controls=("eu-ai-act:art-6", "eu-ai-act:art-9", "iso-42001:A.5.2", "nist-ai-rmf:MAP-2"),
)
def risk_classified(estate: Estate):
    """Every AI system that is not retired has a risk tier (prohibited, high, limited, minimal)."""
    return _systems(
        estate,
        _retired,
        lambda s: (
            (False, "The risk tier has not been classified.")
            if s["risk_tier"] == RiskTier.UNCLASSIFIED
            else (True, f"Classified {s['risk_tier']}.")
        ),
    )


@check(
    "ai_system.risk_review_current",
    title="The risk classification was reviewed within 12 months",
    severity=CheckSeverity.MEDIUM,
    subject_type=SubjectType.AI_SYSTEM,
    controls=(
        "eu-ai-act:art-9",
        "iso-42001:A.5.3",
        "nist-ai-rmf:GOVERN-1",
        "nist-ai-rmf:MEASURE-3",
    ),
)
def risk_review_current(estate: Estate):
    """A classified AI system that is not retired had its risk classification made or reviewed
    in the last 12 months."""

    def applies(system):
        if not _live(system):
            return "Retired."
        if system["risk_tier"] == RiskTier.UNCLASSIFIED:
            return "Not classified yet (see ai_system.risk_classified)."
        return True

    def judge(system):
        dates = [d for d in (system["risk_reviewed_at"], system["risk_classified_at"]) if d]
        if not dates:
            return False, "No classification or review date is recorded."
        last = max(dates)
        if estate.today - last > REVIEW_MAX_AGE:
            return False, f"Last reviewed {last.isoformat()}, more than 12 months ago."
        return True, f"Last reviewed {last.isoformat()}."

    return _systems(estate, applies, judge)


@check(
    "ai_system.no_prohibited_practice",
    title="No AI system is used for a prohibited practice",
    severity=CheckSeverity.CRITICAL,
    subject_type=SubjectType.AI_SYSTEM,
    controls=(
        "eu-ai-act:art-5",
        "iso-42001:A.2.2",
        "nist-ai-rmf:GOVERN-1",
        "nist-ai-rmf:MAP-1",
    ),
    waivable=False,
    opens_incident=True,
)
def no_prohibited_practice(estate: Estate):
    """An AI system classified as a prohibited practice (Art. 5) that is not retired is a
    critical finding, and opens a compliance incident."""
    for system in estate.systems:
        if system["risk_tier"] != RiskTier.PROHIBITED:
            yield Result(system["id"], system["name"], PASS, "Not a prohibited practice.")
        elif not _live(system):
            yield Result(system["id"], system["name"], PASS, "Prohibited practice, retired.")
        else:
            yield Result(
                system["id"],
                system["name"],
                FAIL,
                f"Classified as a prohibited practice (Art. 5) and in {system['stage']}: "
                "stop it and retire it.",
            )


@check(
    "ai_system.annex_iii_high_risk",
    title="Systems in an Annex III area are classified high-risk",
    severity=CheckSeverity.HIGH,
    subject_type=SubjectType.AI_SYSTEM,
    controls=("eu-ai-act:art-6", "iso-42001:A.5.2", "nist-ai-rmf:MAP-2"),
)
def annex_iii_high_risk(estate: Estate):
    """An AI system used in an Annex III area (Art. 6(2)) is classified high-risk (or
    prohibited), not minimal, limited or unclassified."""

    def applies(system):
        if not _live(system):
            return "Retired."
        return True if system["annex_iii_area"] else "Not used in an Annex III area."

    def judge(system):
        area = system["annex_iii_area"]
        if system["risk_tier"] in (RiskTier.HIGH, RiskTier.PROHIBITED):
            return True, f"Annex III area '{area}', classified {system['risk_tier']}."
        return False, f"Used in Annex III area '{area}' but classified {system['risk_tier']}."

    return _systems(estate, applies, judge)


def _high_only(system) -> bool | str:
    if not _live(system):
        return "Retired."
    return True if system["risk_tier"] == HIGH else "Not high-risk."


@check(
    "ai_system.technical_documentation",
    title="High-risk systems have technical documentation",
    severity=CheckSeverity.HIGH,
    subject_type=SubjectType.AI_SYSTEM,
    controls=(
        "eu-ai-act:art-11",
        "eu-ai-act:art-13",
        "iso-42001:A.6.2.7",
        "iso-42001:A.8.2",
        "nist-ai-rmf:MAP-2",
    ),
)
def technical_documentation(estate: Estate):
    """A high-risk AI system links to its technical documentation (Art. 11)."""
    return _systems(
        estate,
        _high_only,
        lambda s: (
            (True, f"Documented at {s['technical_documentation_url']}.")
            if s["technical_documentation_url"]
            else (False, "No technical documentation is linked.")
        ),
    )


@check(
    "ai_system.human_oversight",
    title="High-risk systems have a named human overseer",
    severity=CheckSeverity.HIGH,
    subject_type=SubjectType.AI_SYSTEM,
    controls=(
        "eu-ai-act:art-14",
        "eu-ai-act:art-26",
        "iso-42001:A.9.2",
        "nist-ai-rmf:GOVERN-3",
    ),
)
def human_oversight(estate: Estate):
    """A high-risk AI system is under human oversight by a named person or team (Art. 14)."""

    def judge(system):
        if not system["human_oversight"]:
            return False, "Human oversight is not in place."
        if not system["human_overseer"].strip():
            return False, "Human oversight is on, but no overseer is named."
        return True, f"Overseen by {system['human_overseer']}."

    return _systems(estate, _high_only, judge)


@check(
    "ai_system.fundamental_rights_assessment",
    title="A required fundamental-rights impact assessment is done",
    severity=CheckSeverity.HIGH,
    subject_type=SubjectType.AI_SYSTEM,
    controls=(
        "eu-ai-act:art-27",
        "iso-42001:A.5.4",
        "iso-42001:A.5.5",
        "nist-ai-rmf:MAP-5",
    ),
)
def fundamental_rights_assessment(estate: Estate):
    """A high-risk AI system that needs a fundamental-rights impact assessment (Art. 27) has
    completed one."""

    def applies(system):
        reason = _high_only(system)
        if reason is not True:
            return reason
        return True if system["fria_required"] else "No assessment is required (Art. 27)."

    def judge(system):
        done = system["fria_completed_at"]
        if done is None:
            return False, "The fundamental-rights impact assessment has not been completed."
        if done > estate.today:
            return False, f"The assessment is dated in the future ({done.isoformat()})."
        return True, f"Assessment completed {done.isoformat()}."

    return _systems(estate, applies, judge)


@check(
    "ai_system.eu_database_registration",
    title="High-risk systems in production are registered in the EU database",
    severity=CheckSeverity.MEDIUM,
    subject_type=SubjectType.AI_SYSTEM,
    controls=("eu-ai-act:art-49", "iso-42001:A.8.5", "nist-ai-rmf:GOVERN-1"),
)
def eu_database_registration(estate: Estate):
    """A high-risk AI system in production carries its EU database registration (Art. 49)."""

    def applies(system):
        reason = _high_only(system)
        if reason is not True:
            return reason
        return True if system["stage"] == Stage.PRODUCTION else "Not in production yet."

    return _systems(
        estate,
        applies,
        lambda s: (
            (True, f"Registered as {s['eu_database_id']}.")
            if s["eu_database_id"].strip()
            else (False, "No EU database registration is recorded.")
        ),
    )


@check(
    "ai_system.vendor_assessment_current",
    title="Vendor and open-weights models have a current supplier assessment",
    severity=CheckSeverity.MEDIUM,
    subject_type=SubjectType.AI_SYSTEM,
    controls=(
        "iso-42001:A.10.3",
        "iso-42001:A.10.2",
        "nist-ai-rmf:GOVERN-6",
        "nist-ai-rmf:MANAGE-3",
    ),
)
def vendor_assessment_current(estate: Estate):
    """An AI system built on a vendor's or an open-weights model had its supplier assessed in
    the last 12 months."""

    def applies(system):
        if not _live(system):
            return "Retired."
        if system["provenance"] == Provenance.IN_HOUSE:
            return "Built in-house."
        return True

    def judge(system):
        assessed = system["vendor_assessed_at"]
        who = system["vendor"] or system["provenance"].replace("_", " ")
        if assessed is None:
            return False, f"The supplier ({who}) has never been assessed."
        if estate.today - assessed > REVIEW_MAX_AGE:
            return False, f"The supplier ({who}) was last assessed {assessed.isoformat()}."
        return True, f"Supplier ({who}) assessed {assessed.isoformat()}."

    return _systems(estate, applies, judge)


@check(
    "ai_system.ai_disclosure",
    title="User-facing and generative AI discloses itself",
    severity=CheckSeverity.MEDIUM,
    subject_type=SubjectType.AI_SYSTEM,
    controls=("eu-ai-act:art-50", "iso-42001:A.8.2", "nist-ai-rmf:MEASURE-2"),
)
def ai_disclosure(estate: Estate):
    """A user-facing or generative AI system tells people they interact with AI, or marks its
    output as generated (Art. 50)."""

    def applies(system):
        if not _live(system):
            return "Retired."
        if system["user_facing"] or system["generative"]:
            return True
        return "Neither user-facing nor generative."

    return _systems(
        estate,
        applies,
        lambda s: (
            (True, "Discloses that it is AI.")
            if s["ai_disclosure"]
            else (False, "Does not disclose to users that they interact with AI.")
        ),
    )


def _is_live_deployment(deployment: dict) -> bool:
    status = deployment["compute__status"]
    if deployment["compute_id"] is None:
        return bool(deployment["endpoint"])
    return status not in ("retired", "offline")


@check(
    "ai_system.retired_holds_no_capacity",
    title="Retired systems hold no live deployment or GPU",
    severity=CheckSeverity.MEDIUM,
    subject_type=SubjectType.AI_SYSTEM,
    controls=("iso-42001:A.4.5", "iso-42001:A.6.2.6", "nist-ai-rmf:MANAGE-2"),
)
def retired_holds_no_capacity(estate: Estate):
    """A retired AI system has no deployment still on active compute or serving an endpoint,
    and so holds no GPUs."""

    def judge(system):
        live = [
            d for d in estate.deployments_by_system.get(system["id"], ()) if _is_live_deployment(d)
        ]
        if not live:
            return True, "No live deployment."
        gpus = sum(d["compute__gpu_count"] or 0 for d in live)
        names = ", ".join(sorted(d["name"] for d in live))
        return False, f"Still deployed: {names} ({gpus} GPU(s))."

    return _systems(estate, lambda s: True if not _live(s) else "Not retired.", judge)


@check(
    "ai_system.training_data_validated",
    title="High-risk systems train on validated data",
    severity=CheckSeverity.MEDIUM,
    subject_type=SubjectType.AI_SYSTEM,
    controls=(
        "eu-ai-act:art-10",
        "eu-ai-act:art-15",
        "iso-42001:A.7.4",
        "nist-ai-rmf:MEASURE-2",
    ),
)
def training_data_validated(estate: Estate):
    """Every dataset a high-risk AI system trains or is evaluated on has a quality score and
    was validated in the last 12 months."""

    def judge(system):
        usage = [
            u for u in estate.usage_by_system.get(system["id"], ()) if u["usage"] != "inference"
        ]
        if not usage:
            return False, "No training or evaluation dataset is recorded."
        stale = []
        for row in usage:
            dataset = estate.datasets_by_id.get(row["dataset_id"])
            validated = dataset and dataset["last_validated_at"]
            if (
                dataset is None
                or dataset["quality_score"] is None
                or not validated
                or estate.now - validated > REVIEW_MAX_AGE
            ):
                stale.append(dataset["name"] if dataset else f"#{row['dataset_id']}")
        if stale:
            return False, f"Not validated in the last 12 months: {', '.join(sorted(set(stale)))}."
        return True, f"{len(usage)} dataset use(s), all validated."

    return _systems(estate, _high_only, judge)


# --- Deployment checks ------------------------------------------------------------------------


@check(
    "deployment.model_version_matches",
    title="The deployed model version is the documented one",
    severity=CheckSeverity.MEDIUM,
    subject_type=SubjectType.DEPLOYMENT,
    controls=(
        "eu-ai-act:art-11",
        "eu-ai-act:art-12",
        "iso-42001:A.6.2.5",
        "iso-42001:A.6.2.7",
        "nist-ai-rmf:MAP-2",
    ),
)
def model_version_matches(estate: Estate):
    """A production deployment runs the model version its AI system documents."""

    def judge(deployment):
        system = estate.systems_by_id.get(deployment["ai_system_id"])
        documented = (system or {}).get("model_version") or ""
        if not documented:
            return False, "The AI system documents no model version."
        if deployment["model_version"] != documented:
            return (
                False,
                f"Runs {deployment['model_version']}, the documented version is {documented}.",
            )
        return True, f"Runs the documented version {documented}."

    return _production_deployments(estate, judge)


@check(
    "deployment.monitoring",
    title="Production deployments are monitored",
    severity=CheckSeverity.HIGH,
    subject_type=SubjectType.DEPLOYMENT,
    controls=(
        "eu-ai-act:art-72",
        "eu-ai-act:art-26",
        "iso-42001:A.6.2.6",
        "nist-ai-rmf:MEASURE-2",
        "nist-ai-rmf:MANAGE-4",
    ),
)
def monitoring(estate: Estate):
    """A production deployment has monitoring on (post-market monitoring, Art. 72)."""
    return _production_deployments(
        estate,
        lambda d: (
            (True, "Monitoring is on.")
            if d["monitoring_enabled"]
            else (False, "Monitoring is off.")
        ),
    )


@check(
    "deployment.logging_retention",
    title="Production deployments keep logs for at least six months",
    severity=CheckSeverity.HIGH,
    subject_type=SubjectType.DEPLOYMENT,
    controls=(
        "eu-ai-act:art-12",
        "eu-ai-act:art-26",
        "iso-42001:A.6.2.8",
        "nist-ai-rmf:MANAGE-4",
    ),
)
def logging_retention(estate: Estate):
    """A production deployment records event logs and keeps them at least 183 days
    (Art. 12, Art. 26(6))."""

    def judge(deployment):
        if not deployment["logging_enabled"]:
            return False, "Logging is off."
        days = deployment["log_retention_days"]
        if days is None:
            return False, "Logging is on, but no retention is set."
        if days < MIN_LOG_RETENTION_DAYS:
            return False, f"Logs are kept {days} days; at least {MIN_LOG_RETENTION_DAYS} needed."
        return True, f"Logs are kept {days} days."

    return _production_deployments(estate, judge)


@check(
    "deployment.runbook",
    title="Production deployments have a runbook",
    severity=CheckSeverity.MEDIUM,
    subject_type=SubjectType.DEPLOYMENT,
    controls=("eu-ai-act:art-26", "iso-42001:A.6.2.6", "nist-ai-rmf:MANAGE-4"),
)
def runbook(estate: Estate):
    """A production deployment links to the runbook the on-call team follows."""
    return _production_deployments(
        estate,
        lambda d: (
            (True, f"Runbook at {d['runbook_url']}.")
            if d["runbook_url"]
            else (False, "No runbook is linked.")
        ),
    )


@check(
    "deployment.production_approval",
    title="Production changes are approved",
    severity=CheckSeverity.MEDIUM,
    subject_type=SubjectType.DEPLOYMENT,
    controls=("eu-ai-act:art-9", "iso-42001:A.6.2.5", "nist-ai-rmf:MANAGE-1"),
)
def production_approval(estate: Estate):
    """A production deployment records who approved it."""
    return _production_deployments(
        estate,
        lambda d: (
            (True, f"Approved by {d['approved_by']}.")
            if d["approved_by"].strip()
            else (False, "No approval is recorded.")
        ),
    )


# --- Dataset checks -----------------------------------------------------------------------------


@check(
    "dataset.provenance_recorded",
    title="Datasets record provenance, licence and residency",
    severity=CheckSeverity.MEDIUM,
    subject_type=SubjectType.DATASET,
    controls=(
        "eu-ai-act:art-10",
        "iso-42001:A.7.5",
        "iso-42001:A.7.3",
        "iso-42001:A.4.3",
        "nist-ai-rmf:MAP-4",
    ),
)
def provenance_recorded(estate: Estate):
    """A dataset records where it came from, its licence, its residency and an owner
    (whether it holds personal data is always recorded)."""
    names = {
        "provenance": "provenance",
        "licence": "licence",
        "residency_country": "residency",
        "owner": "owner",
    }
    for dataset in estate.datasets:
        missing = _missing({k: str(dataset[k] or "") for k in names}, names)
        if missing:
            yield Result(dataset["id"], dataset["name"], FAIL, f"Missing: {', '.join(missing)}.")
        else:
            yield Result(
                dataset["id"],
                dataset["name"],
                PASS,
                "Provenance, licence, residency and owner recorded.",
            )


@check(
    "dataset.personal_data_residency",
    title="Personal data stays in the tenant's approved regions",
    severity=CheckSeverity.HIGH,
    subject_type=SubjectType.DATASET,
    controls=(
        "eu-ai-act:art-10",
        "iso-42001:A.7.3",
        "nist-ai-rmf:GOVERN-1",
        "nist-ai-rmf:MAP-4",
    ),
)
def personal_data_residency(estate: Estate):
    """A dataset holding personal data resides in a country the tenant's data residency
    allows (e.g. "EU", "UK", "DE,FR")."""
    for dataset in estate.datasets:
        label = dataset["name"]
        country = str(dataset["residency_country"] or "")
        if not dataset["personal_data"]:
            yield Result(dataset["id"], label, NA, "Holds no personal data.")
        elif estate.approved is None:
            yield Result(dataset["id"], label, NA, "The tenant has no data residency policy.")
        elif not country:
            yield Result(dataset["id"], label, FAIL, "Personal data with no recorded residency.")
        elif country not in estate.approved:
            yield Result(
                dataset["id"],
                label,
                FAIL,
                f"Personal data held in {country}, outside the approved regions.",
            )
        else:
            yield Result(dataset["id"], label, PASS, f"Held in {country}, an approved region.")


# --- Incident checks ----------------------------------------------------------------------------


@check(
    "incident.regulator_deadline",
    title="Serious incidents are reported within their regulator deadline",
    severity=CheckSeverity.HIGH,
    subject_type=SubjectType.INCIDENT,
    controls=("eu-ai-act:art-73", "iso-42001:A.8.4", "nist-ai-rmf:MANAGE-4"),
)
def regulator_deadline(estate: Estate):
    """A serious AI incident (Art. 73) is reported to the authority before its deadline; one
    still inside its deadline passes for now."""
    for incident in estate.serious_incidents:
        label = f"{incident['reference']} {incident['title']}"[:300]
        deadline, notified = incident["regulator_deadline"], incident["regulator_notified_at"]
        if deadline is None:
            yield Result(
                incident["id"], label, FAIL, "Serious incident with no regulator deadline."
            )
        elif notified is not None:
            if notified <= deadline:
                yield Result(incident["id"], label, PASS, f"Reported {notified:%Y-%m-%d %H:%M}.")
            else:
                yield Result(
                    incident["id"],
                    label,
                    FAIL,
                    f"Reported {notified:%Y-%m-%d %H:%M}, "
                    f"after the {deadline:%Y-%m-%d %H:%M} deadline.",
                )
        elif deadline < estate.now:
            yield Result(
                incident["id"],
                label,
                FAIL,
                f"Not reported; the deadline {deadline:%Y-%m-%d %H:%M} passed.",
            )
        else:
            yield Result(
                incident["id"], label, PASS, f"Not reported yet; due by {deadline:%Y-%m-%d %H:%M}."
            )
