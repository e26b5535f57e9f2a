"""Live readiness signals: figures a readiness score draws on besides the answers.

Each signal reads what Groundwork already holds through the owning context's selectors, in a
fixed number of queries per tenant whatever the size of its estate. A value of None means "no
data" (nothing to measure), never a made-up 0 or 100. Call inside the tenant's scope.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property

from django.utils import timezone

from operations.compliance import selectors as compliance
from operations.incidents import selectors as incidents
from operations.inventory import selectors as inventory
from operations.optimisation import selectors as optimisation
from operations.telemetry import selectors as telemetry
from tenants import selectors as tenants

#: The most links a reading carries (the failing or missing ones first).
LINK_LIMIT = 10

_ACTIVE = "active"
_MAINTENANCE = "maintenance"
_GPU_CLUSTER = "gpu_cluster"
_GPU_NODE = "gpu_node"
_IDLE_GPU = "idle_gpu"
_CAPACITY_FORECAST = "capacity_forecast"
_UNCLASSIFIED = "unclassified"
_HIGH = "high"
_DATASET_METADATA = {
    "owner": "owner",
    "classification": "classification",
    "residency_country": "residency",
    "provenance": "provenance",
    "licence": "licence",
}


@dataclass(frozen=True)
class SignalReading:
    key: str
    value: float | None
    unit: str
    explanation: str
    links: tuple[dict, ...] = ()
    detail: dict = field(default_factory=dict)


def _link(label: str, kind: str, id: int | str) -> dict:
    return {"label": label, "kind": kind, "id": id}


def _links(failing: list[dict], passing: list[dict] = ()) -> tuple[dict, ...]:
    return tuple([*failing, *passing][:LINK_LIMIT])


def _percent(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _blank(value) -> bool:
    return not str(value or "").strip()


def _p95(values: list[float]) -> float:
    """The 95th percentile by nearest rank."""
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


class _Figures:
    """One tenant's readings' shared inputs, each read once and only when a signal needs it."""

    def __init__(self, tenant, now: dt.datetime):
        self.tenant = tenant
        self.now = now

    @cached_property
    def estate(self) -> dict[str, list[dict]]:
        return inventory.readiness_estate_rows(tenant=self.tenant)

    @cached_property
    def compute(self) -> list[dict]:
        return self.estate["compute"]

    @cached_property
    def production(self) -> list[dict]:
        return self.estate["production"]

    @cached_property
    def open_recommendations(self) -> list[dict]:
        return optimisation.recommendations_open_rows(tenant=self.tenant)

    @cached_property
    def compliance(self) -> dict:
        return compliance.compliance_readiness_figures(
            tenant=self.tenant, now=self.now, limit=LINK_LIMIT
        )

    @cached_property
    def latest_scores(self) -> list[dict]:
        return self.compliance["latest_scores"]

    @cached_property
    def datasets(self) -> list[dict]:
        return self.estate["datasets"]

    @cached_property
    def ai_systems(self) -> list[dict]:
        return self.estate["ai_systems"]

    @cached_property
    def incidents_90d(self) -> dict:
        return incidents.incident_readiness_figures(
            tenant=self.tenant,
            start=self.now - dt.timedelta(days=90),
            end=self.now,
            limit=LINK_LIMIT,
        )

    @cached_property
    def gpu_nodes(self) -> list[dict]:
        return [
            row
            for row in self.compute
            if row["kind"] == _GPU_NODE and row["status"] == _ACTIVE and row["gpu_count"] > 0
        ]


# --- Infrastructure and AI operations: telemetry and capacity ----------------------------------


def _telemetry_coverage(figures: _Figures) -> SignalReading:
    # A GPU cluster reports through its nodes; compute out of service reports nothing.
    compute = [
        row for row in figures.compute if row["status"] == _ACTIVE and row["kind"] != _GPU_CLUSTER
    ]
    deployments = figures.production
    total = len(compute) + len(deployments)
    if not total:
        return _no_data(
            "telemetry_coverage", "%", "No active compute or production deployment to watch."
        )
    reporting = telemetry.telemetry_reporting_since(
        tenant=figures.tenant, since=figures.now - dt.timedelta(hours=24)
    )
    compute_ok = [row for row in compute if row["id"] in reporting["compute"]]
    deployments_ok = [row for row in deployments if row["id"] in reporting["deployment"]]
    silent = [
        *(_link(r["hostname"], "compute", r["id"]) for r in compute if r not in compute_ok),
        *(_link(r["name"], "deployment", r["id"]) for r in deployments if r not in deployments_ok),
    ]
    reported = len(compute_ok) + len(deployments_ok)
    return SignalReading(
        key="telemetry_coverage",
        value=_percent(reported, total),
        unit="%",
        explanation=(
            f"{reported} of {total} resources reported in the last 24 h "
            f"(compute {len(compute_ok)} of {len(compute)}, "
            f"production deployments {len(deployments_ok)} of {len(deployments)})."
        ),
        links=_links(silent),
        detail={
            "compute": {"reporting": len(compute_ok), "total": len(compute)},
            "production_deployments": {
                "reporting": len(deployments_ok),
                "total": len(deployments),
            },
        },
    )


def _gpu_headroom_production(figures: _Figures) -> SignalReading:
    key = "gpu_headroom_production"
    serving = {row["compute_id"] for row in figures.production if row["compute_id"]}
    # A deployment on a GPU cluster runs on the cluster's nodes.
    nodes = [
        row
        for row in figures.gpu_nodes
        if row["id"] in serving or (row["cluster_id"] and row["cluster_id"] in serving)
    ]
    if not nodes:
        return _no_data(key, "%", "No production deployment runs on active GPU compute.")
    hourly = telemetry.telemetry_gpu_utilisation_hourly(
        tenant=figures.tenant,
        compute_ids=[row["id"] for row in nodes],
        start=figures.now - dt.timedelta(days=7),
        end=figures.now,
    )
    pooled = [value for values in hourly.values() for value in values]
    if not pooled:
        return _no_data(
            key,
            "%",
            f"None of the {_plural(len(nodes), 'GPU node')} serving production reported GPU "
            "utilisation in the last 7 days.",
        )
    p95 = _p95(pooled)
    per_node = {
        row["hostname"]: round(_p95(hourly[row["id"]]), 1) for row in nodes if hourly.get(row["id"])
    }
    hottest = sorted(
        (row for row in nodes if row["hostname"] in per_node),
        key=lambda row: (-per_node[row["hostname"]], row["hostname"]),
    )
    return SignalReading(
        key=key,
        value=round(max(100 - p95, 0.0), 1),
        unit="%",
        explanation=(
            f"p95 GPU utilisation {p95:.1f} % (hourly means, 7 days) on the "
            f"{_plural(len(nodes), 'GPU node')} serving production "
            f"({len(per_node)} reporting, {len(pooled)} node-hours)."
        ),
        links=_links(
            [
                _link(
                    f"{row['hostname']} (p95 {per_node[row['hostname']]:.0f} %)",
                    "compute",
                    row["id"],
                )
                for row in hottest
            ]
        ),
        detail={"p95_utilisation": round(p95, 1), "p95_by_node": per_node},
    )


def _capacity_days_until_full(figures: _Figures) -> SignalReading:
    key = "capacity_days_until_full"
    forecasts = [
        row
        for row in figures.open_recommendations
        if row["kind"] == _CAPACITY_FORECAST
        and isinstance((row.get("evidence") or {}).get("days_until_saturation"), int | float)
    ]
    if not forecasts:
        return _no_data(key, "days", "No open capacity forecast: no GPU pool is filling up.")
    forecasts.sort(key=lambda row: (row["evidence"]["days_until_saturation"], row["id"]))
    soonest = forecasts[0]
    days = float(soonest["evidence"]["days_until_saturation"])
    return SignalReading(
        key=key,
        value=days,
        unit="days",
        explanation=(
            f"{soonest['subject_label']} "
            + (
                "already peaks at saturation"
                if days <= 0
                else f"is forecast full in {days:.0f} days"
            )
            + f", the soonest of {_plural(len(forecasts), 'open capacity forecast')}."
        ),
        links=_links([_link(row["title"], "recommendation", row["id"]) for row in forecasts]),
        detail={
            "forecasts": {
                row["subject_label"]: row["evidence"]["days_until_saturation"] for row in forecasts
            }
        },
    )


def _production_sites_redundant(figures: _Figures) -> SignalReading:
    key = "production_sites_redundant"
    site_ids = {row["compute__site_id"] for row in figures.production if row["compute__site_id"]}
    if not site_ids:
        return _no_data(key, "%", "No production deployment runs at a known site.")
    sites = inventory.sites_with_redundancy(tenant=figures.tenant, site_ids=site_ids)
    redundant = [row for row in sites if row["redundant"]]
    single = [row for row in sites if not row["redundant"]]
    return SignalReading(
        key=key,
        value=_percent(len(redundant), len(sites)),
        unit="%",
        explanation=(
            f"{len(redundant)} of {_plural(len(sites), 'site')} hosting production deployments "
            "have a redundant link."
        ),
        links=_links(
            [_link(f"{row['code']} (no redundant link)", "site", row["id"]) for row in single],
            [_link(row["code"], "site", row["id"]) for row in redundant],
        ),
        detail={"redundant": len(redundant), "sites": len(sites)},
    )


def _api_tokens_with_expiry(figures: _Figures) -> SignalReading:
    key = "api_tokens_with_expiry"
    tokens = tenants.api_tokens_active(tenant=figures.tenant, now=figures.now)
    if not tokens:
        return _no_data(key, "%", "The tenant has no active API token.")
    lasting = [row for row in tokens if row["expires_at"] is None]
    expiring = len(tokens) - len(lasting)
    return SignalReading(
        key=key,
        value=_percent(expiring, len(tokens)),
        unit="%",
        explanation=f"{expiring} of {_plural(len(tokens), 'active API token')} expire.",
        links=_links(
            [
                _link(f"{row['name']} ({row['prefix']}…, never expires)", "token", row["id"])
                for row in lasting
            ]
        ),
        detail={"active": len(tokens), "without_expiry": len(lasting)},
    )


def _rows_lacking(rows, kind: str, wants, lacks) -> tuple[list[dict], dict[str, int]]:
    """Links to the rows that lack something (``lacks(row)`` names what), and how many rows
    lack each of ``wants``."""
    counts = dict.fromkeys(wants, 0)
    links = []
    for row in rows:
        missing = lacks(row)
        for what in missing:
            counts[what] += 1
        if missing:
            links.append(_link(f"{row['name']} (no {', '.join(missing)})", kind, row["id"]))
    return links, counts


# --- Data ----------------------------------------------------------------------------------------


def _dataset_metadata_complete(figures: _Figures) -> SignalReading:
    key = "dataset_metadata_complete"
    datasets = figures.datasets
    if not datasets:
        return _no_data(key, "%", "The tenant has no dataset on record.")
    incomplete, missing_by_field = _rows_lacking(
        datasets,
        "dataset",
        _DATASET_METADATA.values(),
        lambda row: [label for name, label in _DATASET_METADATA.items() if _blank(row[name])],
    )
    complete = len(datasets) - len(incomplete)
    return SignalReading(
        key=key,
        value=_percent(complete, len(datasets)),
        unit="%",
        explanation=(
            f"{complete} of {_plural(len(datasets), 'dataset')} record owner, classification, "
            "residency, provenance and licence."
        ),
        links=_links(incomplete),
        detail={"complete": complete, "datasets": len(datasets), "missing": missing_by_field},
    )


def _personal_data_residency_match(figures: _Figures) -> SignalReading:
    key = "personal_data_residency_match"
    personal = [row for row in figures.datasets if row["personal_data"]]
    if not personal:
        return _no_data(key, "%", "No dataset holds personal data.")
    allowed = compliance.residency_countries_allowed(tenant=figures.tenant)
    if allowed is None:
        return _no_data(key, "%", "The tenant has no data residency policy to match.")
    outside = [row for row in personal if str(row["residency_country"] or "") not in allowed]
    matching = len(personal) - len(outside)
    return SignalReading(
        key=key,
        value=_percent(matching, len(personal)),
        unit="%",
        explanation=(
            f"{matching} of {_plural(len(personal), 'personal-data dataset')} reside where the "
            f"tenant's data residency ({figures.tenant.data_residency}) allows."
        ),
        links=_links(
            [
                _link(
                    f"{row['name']} ({row['residency_country'] or 'no residency'})",
                    "dataset",
                    row["id"],
                )
                for row in outside
            ]
        ),
        detail={
            "matching": matching,
            "personal_datasets": len(personal),
            "residency": figures.tenant.data_residency,
        },
    )


# --- Governance ----------------------------------------------------------------------------------


def _compliance_score(figures: _Figures) -> SignalReading:
    key = "compliance_score"
    plan = tenants.service_plan_get(tenant=figures.tenant)
    in_scope = list(plan.frameworks_in_scope or []) if plan else []
    scores = figures.latest_scores
    if in_scope:
        scores = [row for row in scores if row["code"] in in_scope]
    scored = sorted((row for row in scores if row["score"] is not None), key=lambda r: r["score"])
    if not scored:
        return _no_data(key, "%", "No compliance score yet for the frameworks in scope.")
    lowest = scored[0]
    return SignalReading(
        key=key,
        value=lowest["score"],
        unit="%",
        explanation=(
            f"Lowest of {_plural(len(scored), 'framework')} in scope: {lowest['title']} at "
            f"{lowest['score']:.0f} %."
        ),
        links=_links(
            [
                _link(f"{row['title']} ({row['score']:.0f} %)", "framework", row["code"])
                for row in scored
            ]
        ),
        detail={
            "by_framework": {row["code"]: row["score"] for row in scores},
            "in_scope": in_scope,
        },
    )


def _open_critical_findings(figures: _Figures) -> SignalReading:
    key = "open_critical_findings"
    if not figures.latest_scores:
        return _no_data(key, "count", "No compliance scan has run for the tenant yet.")
    count, first = figures.compliance["critical_failing"]
    return SignalReading(
        key=key,
        value=float(count),
        unit="count",
        explanation=f"{_plural(count, 'critical compliance finding')} failing, not waived.",
        links=_links(
            [
                _link(f"{finding.check_code}: {finding.subject_label}", "finding", finding.pk)
                for finding in first
            ]
        ),
        detail={"failing_critical": count},
    )


def _ai_systems_risk_classified(figures: _Figures) -> SignalReading:
    key = "ai_systems_risk_classified"
    systems = figures.ai_systems
    if not systems:
        return _no_data(key, "%", "The tenant has no AI system on record (besides retired ones).")
    unclassified, fria_missing = [], []
    for row in systems:
        if row["risk_tier"] == _UNCLASSIFIED:
            unclassified.append(_link(f"{row['name']} (not classified)", "ai_system", row["id"]))
        elif row["risk_tier"] == _HIGH and row["fria_required"] and not row["fria_completed_at"]:
            fria_missing.append(
                _link(f"{row['name']} (high risk, no FRIA)", "ai_system", row["id"])
            )
    done = len(systems) - len(unclassified) - len(fria_missing)
    return SignalReading(
        key=key,
        value=_percent(done, len(systems)),
        unit="%",
        explanation=(
            f"{done} of {_plural(len(systems), 'AI system')} have a risk tier "
            f"({len(unclassified)} unclassified, {len(fria_missing)} high-risk without the "
            "required FRIA)."
        ),
        links=_links([*unclassified, *fria_missing]),
        detail={
            "systems": len(systems),
            "unclassified": len(unclassified),
            "fria_missing": len(fria_missing),
        },
    )


def _ai_systems_owned(figures: _Figures) -> SignalReading:
    key = "ai_systems_owned"
    systems = figures.ai_systems
    if not systems:
        return _no_data(key, "%", "The tenant has no AI system on record (besides retired ones).")
    unowned = []
    for row in systems:
        missing = [
            role
            for role, field in (("business", "business_owner"), ("technical", "technical_owner"))
            if _blank(row[field])
        ]
        if missing:
            label = f"{row['name']} (no {' or '.join(missing)} owner)"
            unowned.append(_link(label, "ai_system", row["id"]))
    owned = len(systems) - len(unowned)
    return SignalReading(
        key=key,
        value=_percent(owned, len(systems)),
        unit="%",
        explanation=(
            f"{owned} of {_plural(len(systems), 'AI system')} name a business and a technical "
            "owner."
        ),
        links=_links(unowned),
        detail={"owned": owned, "systems": len(systems)},
    )


# --- AI operations: running production --------------------------------------------------------


def _production_deployments_operable(figures: _Figures) -> SignalReading:
    key = "production_deployments_operable"
    deployments = figures.production
    if not deployments:
        return _no_data(key, "%", "The tenant has no production deployment.")
    watched = incidents.deployments_watched_by_alert_rules(
        tenant=figures.tenant, deployment_ids=[row["id"] for row in deployments]
    )
    lacking, missing_counts = _rows_lacking(
        deployments,
        "deployment",
        ("monitoring", "runbook", "alert rule"),
        lambda row: [
            what
            for what, lacks in (
                ("monitoring", not row["monitoring_enabled"]),
                ("runbook", _blank(row["runbook_url"])),
                ("alert rule", row["id"] not in watched),
            )
            if lacks
        ],
    )
    operable = len(deployments) - len(lacking)
    return SignalReading(
        key=key,
        value=_percent(operable, len(deployments)),
        unit="%",
        explanation=(
            f"{operable} of {_plural(len(deployments), 'production deployment')} have monitoring "
            "on, a runbook and an alert rule in force."
        ),
        links=_links(lacking),
        detail={"operable": operable, "deployments": len(deployments), "missing": missing_counts},
    )


def _mttr_90d(figures: _Figures) -> SignalReading:
    key = "mttr_90d"
    figures_90d = figures.incidents_90d["resolution"]
    resolved = figures_90d["resolved"]
    if not resolved or figures_90d["mttr_seconds"] is None:
        return _no_data(key, "hours", "No incident was resolved in the last 90 days.")
    hours = round(figures_90d["mttr_seconds"] / 3600, 1)
    return SignalReading(
        key=key,
        value=hours,
        unit="hours",
        explanation=(
            f"{_plural(resolved, 'incident')} resolved in the last 90 days, in {hours:.1f} h on "
            "average."
        ),
        links=_links(
            [
                _link(
                    f"{row['reference']}: {row['title']} "
                    f"({row['time_to_resolve'].total_seconds() / 3600:.1f} h)",
                    "incident",
                    row["id"],
                )
                for row in figures_90d["slowest"]
            ]
        ),
        detail={"resolved": resolved, "mttr_hours": hours},
    )


def _sla_attainment_90d(figures: _Figures) -> SignalReading:
    key = "sla_attainment_90d"
    clocks = figures.incidents_90d["sla"]
    settled = clocks["ack_settled"] + clocks["resolve_settled"]
    if not settled:
        return _no_data(key, "%", "No SLA clock ran out or stopped in the last 90 days.")
    met = clocks["ack_met"] + clocks["resolve_met"]
    return SignalReading(
        key=key,
        value=_percent(met, settled),
        unit="%",
        explanation=(
            f"{met} of {_plural(settled, 'SLA clock')} met in the last 90 days "
            f"(acknowledge {clocks['ack_met']} of {clocks['ack_settled']}, "
            f"resolve {clocks['resolve_met']} of {clocks['resolve_settled']})."
        ),
        links=_links(
            [
                _link(f"{row['reference']}: {row['title']} (breached)", "incident", row["id"])
                for row in clocks["breached"]
            ]
        ),
        detail={
            name: clocks[name]
            for name in ("ack_met", "ack_settled", "resolve_met", "resolve_settled")
        },
    )


# --- AI operations: cost ----------------------------------------------------------------------


def _idle_gpu_share(figures: _Figures) -> SignalReading:
    key = "idle_gpu_share"
    nodes = figures.gpu_nodes
    if not nodes:
        return _no_data(key, "%", "The tenant has no active GPU compute.")
    flagged = {
        row["subject_id"] for row in figures.open_recommendations if row["kind"] == _IDLE_GPU
    }
    idle = [row for row in nodes if row["id"] in flagged]
    return SignalReading(
        key=key,
        value=_percent(len(idle), len(nodes)),
        unit="%",
        explanation=(
            f"{len(idle)} of {_plural(len(nodes), 'active GPU node')} have an open idle-GPU "
            "recommendation."
        ),
        links=_links([_link(f"{row['hostname']} (idle)", "compute", row["id"]) for row in idle]),
        detail={"idle": len(idle), "gpu_nodes": len(nodes)},
    )


def _open_savings_share(figures: _Figures) -> SignalReading:
    key = "open_savings_share"
    # A cluster's cost is its nodes' when it has nodes: count it only when it stands alone.
    clusters_with_nodes = {row["cluster_id"] for row in figures.compute if row["cluster_id"]}
    paying = [
        row
        for row in figures.compute
        if row["status"] in (_ACTIVE, _MAINTENANCE)
        and row["hourly_cost"]
        and row["id"] not in clusters_with_nodes
    ]
    run_rate = sum(Decimal(row["hourly_cost"]) for row in paying) * optimisation.HOURS_PER_MONTH
    if not run_rate:
        return _no_data(key, "%", "No compute in service has an hourly cost on record.")
    saving_rows = [
        row for row in figures.open_recommendations if row["estimated_monthly_saving"] > 0
    ]
    savings = sum((row["estimated_monthly_saving"] for row in saving_rows), Decimal("0"))
    by_currency: dict[str, Decimal] = {}
    for row in saving_rows:
        by_currency[row["currency"]] = (
            by_currency.get(row["currency"], Decimal("0")) + row["estimated_monthly_saving"]
        )
    return SignalReading(
        key=key,
        value=_percent(float(savings), float(run_rate)),
        unit="%",
        explanation=(
            f"{_plural(len(saving_rows), 'open recommendation')} would save {savings:,.0f} a "
            f"month, against {run_rate:,.0f} a month of compute in service "
            f"({_plural(len(paying), 'resource')} at their hourly cost)."
        ),
        links=_links(
            [
                _link(
                    f"{row['title']} ({row['estimated_monthly_saving']:,.0f} {row['currency']})",
                    "recommendation",
                    row["id"],
                )
                for row in saving_rows
            ]
        ),
        detail={
            "monthly_saving": str(savings.quantize(Decimal("0.01"))),
            "monthly_run_rate": str(run_rate.quantize(Decimal("0.01"))),
            "saving_by_currency": {
                c: str(v.quantize(Decimal("0.01"))) for c, v in by_currency.items()
            },
        },
    )


def _cloud_spend_vs_budget(figures: _Figures) -> SignalReading:
    key = "cloud_spend_vs_budget"
    accounts = [row for row in figures.estate["cloud_accounts"] if row["monthly_budget"] > 0]
    if not accounts:
        return _no_data(key, "%", "No cloud account has a monthly budget.")
    now = figures.now.astimezone(dt.UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month_hours = calendar.monthrange(now.year, now.month)[1] * 24
    account_of = {
        row["id"]: row["cloud_account_id"]
        for row in figures.compute
        if row["cloud_account_id"] in {account["id"] for account in accounts}
    }
    costs = (
        telemetry.telemetry_compute_cost(
            tenant=figures.tenant, compute_ids=list(account_of), start=month_start, end=now
        )
        if account_of
        else {}
    )
    spent: dict[int, dict] = {}
    for compute_id, cost in costs.items():
        entry = spent.setdefault(account_of[compute_id], {"total": 0.0, "first": cost["first"]})
        entry["total"] += cost["total"]
        entry["first"] = min(entry["first"], cost["first"])
    per_account, per_currency = [], {}
    for account in accounts:
        entry = spent.get(account["id"])
        if entry is None:
            continue
        # Projected from the hours that had spend this month, so a new account is not diluted.
        hours = max(math.ceil((now - entry["first"]).total_seconds() / 3600), 1)
        projected = entry["total"] * month_hours / min(hours, month_hours)
        budget = float(account["monthly_budget"])
        label = f"{account['provider']}:{account['account_id']}"
        per_account.append(
            {"account": account, "label": label, "projected": projected, "budget": budget}
        )
        totals = per_currency.setdefault(account["currency"], [0.0, 0.0])
        totals[0] += projected
        totals[1] += budget
    if not per_account:
        return _no_data(
            key,
            "%",
            f"No spend reported this month on the {_plural(len(accounts), 'cloud account')} "
            "with a budget.",
        )
    ratios = {currency: 100 * spent / budget for currency, (spent, budget) in per_currency.items()}
    worst = max(ratios, key=ratios.get)
    per_account.sort(key=lambda row: -row["projected"] / row["budget"])
    return SignalReading(
        key=key,
        value=round(ratios[worst], 1),
        unit="%",
        explanation=(
            f"Projected month-end cloud spend is {ratios[worst]:.0f} % of budget "
            f"({per_currency[worst][0]:,.0f} of {per_currency[worst][1]:,.0f} {worst}) across "
            f"{_plural(len(per_account), 'account')} reporting spend."
        ),
        links=_links(
            [
                _link(
                    f"{row['label']} ({100 * row['projected'] / row['budget']:.0f} % of budget)",
                    "cloud_account",
                    row["account"]["id"],
                )
                for row in per_account
            ]
        ),
        detail={
            "by_currency": {c: round(r, 1) for c, r in ratios.items()},
            "by_account": {
                row["label"]: {
                    "projected": round(row["projected"], 2),
                    "budget": row["budget"],
                    "currency": row["account"]["currency"],
                }
                for row in per_account
            },
            "accounts_without_spend": len(accounts) - len(per_account),
        },
    )


def _no_data(key: str, unit: str, explanation: str) -> SignalReading:
    return SignalReading(
        key=key, value=None, unit=unit, explanation=explanation, links=(), detail={}
    )


_SIGNALS: dict[str, Callable[[_Figures], SignalReading]] = {
    "telemetry_coverage": _telemetry_coverage,
    "gpu_headroom_production": _gpu_headroom_production,
    "capacity_days_until_full": _capacity_days_until_full,
    "production_sites_redundant": _production_sites_redundant,
    "api_tokens_with_expiry": _api_tokens_with_expiry,
    "dataset_metadata_complete": _dataset_metadata_complete,
    "personal_data_residency_match": _personal_data_residency_match,
    "compliance_score": _compliance_score,
    "open_critical_findings": _open_critical_findings,
    "ai_systems_risk_classified": _ai_systems_risk_classified,
    "ai_systems_owned": _ai_systems_owned,
    "production_deployments_operable": _production_deployments_operable,
    "mttr_90d": _mttr_90d,
    "sla_attainment_90d": _sla_attainment_90d,
    "idle_gpu_share": _idle_gpu_share,
    "open_savings_share": _open_savings_share,
    "cloud_spend_vs_budget": _cloud_spend_vs_budget,
}

SIGNAL_KEYS: tuple[str, ...] = tuple(_SIGNALS)


def readiness_signals(*, tenant, now=None) -> dict[str, SignalReading]:
    """Every signal of ``tenant`` as of ``now``, in a fixed number of queries."""
    figures = _Figures(tenant, now or timezone.now())
    return {key: signal(figures) for key, signal in _SIGNALS.items()}


def readiness_signal(*, tenant, key: str, now=None) -> SignalReading:
    """One signal of ``tenant``; a key not in ``SIGNAL_KEYS`` raises KeyError."""
    return _SIGNALS[key](_Figures(tenant, now or timezone.now()))
