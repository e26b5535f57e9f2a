"""A report's figures: every section read from the owning context's selectors, as JSON.

The figures are stored on the report row, so a document can be drawn again from them (a
quarterly review re-rendered with its edited summary) and tests can check them. Times are ISO
strings in UTC; the document shows them in the tenant's zone.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from operations.compliance.checks import get_check
from operations.compliance.selectors import findings_failing_at_by_severity, score_history_until
from operations.incidents.selectors import (
    incident_metrics,
    incident_metrics_overall,
    incident_regulator_deadlines_in_window,
    incidents_major_in_window,
)
from operations.inventory.selectors import cloud_accounts_with_budget
from operations.jobs.exceptions import UnknownJobKind
from operations.jobs.registry import get_job_kind
from operations.jobs.selectors import job_run_counts_in_window
from operations.optimisation.selectors import (
    recommendation_savings_in_window,
    recommendations_open_top,
)
from operations.readiness.selectors import readiness_score_before
from operations.reports.periods import Period
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.selectors import telemetry_daily_totals
from tenants.models import Tenant
from tenants.selectors import audit_change_counts_in_window

#: Earlier periods drawn beside this one in the incident trend.
TREND_PERIODS = 5
#: Compliance scores drawn per framework.
SCORE_POINTS = 12
TOP_FINDINGS = 5
TOP_RECOMMENDATIONS = 8
MAJOR_INCIDENTS_LISTED = 30


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _number(value) -> float | None:
    if value is None:
        return None
    return round(float(value), 2)


def _rows_iso(rows: list[dict]) -> list[dict]:
    return [
        {key: _iso(v) if isinstance(v, dt.datetime) else v for key, v in row.items()}
        for row in rows
    ]


def tenant_zone(tenant: Tenant) -> ZoneInfo:
    plan = getattr(tenant, "plan", None)
    return ZoneInfo(plan.timezone if plan is not None and plan.timezone else "UTC")


def report_figures(*, tenant: Tenant, period: Period, now: dt.datetime) -> dict:
    """Every section's figures for ``tenant`` over ``period`` (in the tenant's zone)."""
    zone = tenant_zone(tenant)
    start, end = period.bounds(zone)
    return {
        "tenant": {"name": tenant.name, "slug": tenant.slug},
        "period": {
            "kind": period.kind,
            "label": period.label,
            "title": period.title,
            "start": _iso(start),
            "end": _iso(end),
            "timezone": str(zone),
        },
        "generated_at": _iso(now),
        "sla": _sla(tenant, start, end),
        "incident_trend": _incident_trend(tenant, period, zone),
        "major_incidents": _rows_iso(
            incidents_major_in_window(
                tenant=tenant, start=start, end=end, limit=MAJOR_INCIDENTS_LISTED
            )
        ),
        "regulator": _regulator(tenant, start, end),
        "compliance": _compliance(tenant, end),
        "readiness": _readiness(tenant, start, end),
        "gpu": _gpu(tenant, start, end, zone),
        "spend": _spend(tenant, start, end, zone, months=3 if period.kind == "quarterly" else 1),
        "savings": recommendation_savings_in_window(tenant=tenant, start=start, end=end),
        "msp_work": _msp_work(tenant, start, end),
        "open_recommendations": [
            {**row, "estimated_monthly_saving": str(row["estimated_monthly_saving"])}
            for row in recommendations_open_top(tenant=tenant, limit=TOP_RECOMMENDATIONS)
        ],
    }


def _sla(tenant, start, end) -> dict:
    metrics = incident_metrics(tenant=tenant, start=start, end=end)
    return {"overall": metrics["overall"], "by_severity": metrics["by_severity"]}


def _incident_trend(tenant, period: Period, zone) -> list[dict]:
    periods = [period]
    for _ in range(TREND_PERIODS):
        periods.append(periods[-1].previous())
    trend = []
    for each in reversed(periods):
        start, end = each.bounds(zone)
        row = incident_metrics_overall(tenant=tenant, start=start, end=end)
        trend.append({"label": each.label, "title": each.title, **row})
    return trend


def _regulator(tenant, start, end) -> dict:
    rows = _rows_iso(incident_regulator_deadlines_in_window(tenant=tenant, start=start, end=end))
    return {"due": len(rows), "met": sum(1 for row in rows if row["met"]), "rows": rows}


def _compliance(tenant, end) -> dict:
    scores = score_history_until(tenant=tenant, end=end, points=SCORE_POINTS)
    frameworks: dict[int, dict] = {}
    for score in scores:  # newest first per framework
        entry = frameworks.setdefault(
            score.framework_id,
            {"code": score.framework.code, "title": score.framework.title, "scores": []},
        )
        if score.score is not None:
            entry["scores"].append({"at": _iso(score.computed_at), "score": _number(score.score)})
    rows = []
    for entry in frameworks.values():
        entry["scores"].reverse()  # oldest first
        values = [point["score"] for point in entry["scores"]]
        entry["latest"] = values[-1] if values else None
        entry["change"] = round(values[-1] - values[0], 1) if len(values) >= 2 else None
        rows.append(entry)
    findings = findings_failing_at_by_severity(tenant=tenant, at=end, limit=TOP_FINDINGS)
    top = []
    for finding in findings:
        check = get_check(finding.check_code)
        top.append(
            {
                "check": finding.check_code,
                "title": check.title if check else finding.check_code,
                "severity": finding.severity,
                "subject": finding.subject_label,
                "waived": bool(finding.waived),
                "first_seen": _iso(getattr(finding, "first_seen", None)),
            }
        )
    return {"frameworks": rows, "top_findings": top}


def _readiness(tenant, start, end) -> dict:
    latest = readiness_score_before(tenant=tenant, moment=end)
    before = readiness_score_before(tenant=tenant, moment=start)
    level = latest.level if latest else None
    previous = before.level if before else None
    return {
        "level": level,
        "overall": _number(latest.overall) if latest else None,
        "previous_level": previous,
        "previous_overall": _number(before.overall) if before else None,
        "movement": (level - previous) if level is not None and previous is not None else None,
        "computed_at": _iso(latest.computed_at) if latest else None,
    }


def _gpu(tenant, start, end, zone) -> dict:
    days = telemetry_daily_totals(
        tenant=tenant,
        metric=METRICS_BY_NAME["gpu_utilization"],
        start=start,
        end=end,
        tz=zone,
        resource_kind=ResourceKind.COMPUTE,
    )
    daily = [
        {"day": _iso(day), "utilisation": round(total / hours, 1)}
        for day, total, hours in days
        if hours
    ]
    hours = sum(count for _day, _total, count in days)
    mean = round(sum(total for _day, total, _count in days) / hours, 1) if hours else None
    return {"daily": daily, "mean_utilisation": mean}


def _spend(tenant, start, end, zone, *, months: int) -> dict:
    days = telemetry_daily_totals(
        tenant=tenant,
        metric=METRICS_BY_NAME["cost_per_hour"],
        start=start,
        end=end,
        tz=zone,
        resource_kind=ResourceKind.COMPUTE,
    )
    daily = [{"day": _iso(day), "amount": round(total, 2)} for day, total, _hours in days]
    total = round(sum(row["amount"] for row in daily), 2)
    accounts = cloud_accounts_with_budget(tenant=tenant)
    currencies = sorted({row["currency"] for row in accounts if row["currency"]})
    budget = sum((row["monthly_budget"] for row in accounts), Decimal("0")) * months
    budget_value = _number(budget) if accounts else None
    return {
        "daily": daily,
        "total": total,
        # Cost telemetry carries no currency: name one only when every budgeted account agrees.
        "currency": currencies[0] if len(currencies) == 1 else "",
        "mixed_currencies": currencies if len(currencies) > 1 else [],
        "budget": budget_value,
        "budget_share": round(total / budget_value, 4) if budget_value else None,
        "accounts": len(accounts),
    }


def _job_title(kind: str) -> str:
    try:
        return get_job_kind(kind).title or kind
    except UnknownJobKind:
        return kind  # a kind since removed: its runs still count


def _msp_work(tenant, start, end) -> dict:
    jobs = [
        {**row, "title": _job_title(row["kind"])}
        for row in job_run_counts_in_window(tenant=tenant, start=start, end=end)
    ]
    changes = audit_change_counts_in_window(tenant=tenant, start=start, end=end)
    return {
        "jobs": jobs,
        "jobs_total": sum(row["runs"] for row in jobs),
        "jobs_failed": sum(row["failed"] for row in jobs),
        "changes": changes,
    }
