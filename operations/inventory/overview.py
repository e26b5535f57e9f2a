"""The estate panel of the client overview: daily GPU utilisation over 30 days, daily spend, and
this month's cloud spend to date against the cloud accounts' monthly budgets, per currency. Four
queries whatever the size of the estate or of its telemetry (hourly rollups, summed by day in
the database)."""

from __future__ import annotations

import calendar
import datetime as dt
from collections import Counter, defaultdict
from decimal import Decimal

from django.utils import timezone

from operations.inventory.selectors import cloud_accounts_with_budget, compute_currencies
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.selectors import (
    telemetry_daily_totals,
    telemetry_daily_totals_by_resource,
)
from tenants.portal.charts import Series, format_number, line_chart

DAYS = 30
UTILISATION = METRICS_BY_NAME["gpu_utilization"]
COST = METRICS_BY_NAME["cost_per_hour"]


def _budgets(tenant) -> dict[str, Decimal]:
    budgets: dict[str, Decimal] = defaultdict(Decimal)
    for account in cloud_accounts_with_budget(tenant=tenant):
        budgets[account["currency"]] += Decimal(account["monthly_budget"])
    return dict(budgets)


def _spend_by_currency(
    tenant, *, start, end, zone
) -> tuple[dict[str, dict[dt.datetime, float]], dict[str, dict[dt.datetime, float]]]:
    """({currency: {day: spend}} of all compute, the same of the compute billed to a cloud
    account). Budgets are the cloud accounts', so only billed spend is weighed against them (as
    the fleet dashboard does); the daily chart shows all of it, compute without an account
    counted in the currency most accounts bill in (as the optimisation scan does)."""
    currencies = compute_currencies(tenant=tenant)
    usual = Counter(c for c in currencies.values() if c).most_common(1)
    fallback = usual[0][0] if usual else ""
    spend: dict[str, dict[dt.datetime, float]] = defaultdict(lambda: defaultdict(float))
    billed: dict[str, dict[dt.datetime, float]] = defaultdict(lambda: defaultdict(float))
    for day, resource_id, total in telemetry_daily_totals_by_resource(
        tenant=tenant,
        metric=COST,
        start=start,
        end=end,
        tz=zone,
        resource_kind=ResourceKind.COMPUTE,
    ):
        currency = currencies.get(resource_id)
        spend[currency or fallback][day] += total
        if currency:
            billed[currency][day] += total

    def plain(by_currency):
        return {currency: dict(days) for currency, days in sorted(by_currency.items())}

    return plain(spend), plain(billed)


def estate_overview(*, tenant, now: dt.datetime) -> dict:
    zone = timezone.get_current_timezone()
    local_now = now.astimezone(zone)
    today = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = today - dt.timedelta(days=DAYS - 1)
    month_start = today.replace(day=1)
    utilisation = telemetry_daily_totals(
        tenant=tenant,
        metric=UTILISATION,
        start=first_day,
        end=now,
        tz=zone,
        resource_kind=ResourceKind.COMPUTE,
    )
    spend, billed = _spend_by_currency(
        tenant, start=min(first_day, month_start), end=now, zone=zone
    )
    budgets = _budgets(tenant)
    days_in_month = calendar.monthrange(local_now.year, local_now.month)[1]
    elapsed_days = (now - month_start).total_seconds() / 86400

    currencies = []
    for currency in sorted(set(billed) | set(budgets)):
        days = billed.get(currency, {})
        cumulative, running = [], 0.0
        for day in sorted(day for day in days if day >= month_start):
            running += days[day]
            cumulative.append((day, round(running, 2)))
        budget = budgets.get(currency)
        projected = running / elapsed_days * days_in_month if cumulative else None
        title = f"Cloud spend this month to date ({currency or 'no currency'})"
        if budget:
            title += f" against the monthly budget of {format_number(float(budget), currency)}"
        currencies.append(
            {
                "currency": currency,
                "budget": budget,
                "month_to_date": round(running, 2) if cumulative else None,
                "projected": round(projected, 2) if projected is not None else None,
                "budget_used": round(100 * running / float(budget), 1)
                if budget and cumulative
                else None,
                "projected_over": bool(budget and projected and projected > float(budget)),
                "chart": line_chart(
                    title=title,
                    series=[Series("Spend to date", cumulative)],
                    y_title="Spend",
                    unit=currency,
                    target=float(budget) if budget else None,
                    target_label="Monthly budget",
                    height=260,
                ),
            }
        )
    daily_spend_chart = line_chart(
        title=f"Spend per day, last {DAYS} days",
        series=[
            Series(
                currency or "Spend",
                sorted((day, round(total, 2)) for day, total in days.items() if day >= first_day),
            )
            for currency, days in spend.items()
        ],
        y_title="Spend" if len(spend) > 1 else "Spend per day",
        unit=next(iter(spend)) if len(spend) == 1 else "",
        height=260,
    )
    hours = sum(count for _d, _t, count in utilisation)
    mean = sum(total for _d, total, _c in utilisation) / hours if hours else None
    utilisation_chart = line_chart(
        title=f"GPU utilisation, daily mean over the GPU nodes, last {DAYS} days",
        series=[Series("GPU utilisation", [(day, round(t / c, 1)) for day, t, c in utilisation])],
        y_title="GPU utilisation",
        unit="%",
        y_range=(0, 100),
        height=260,
    )
    return {
        "utilisation_mean": round(mean, 1) if mean is not None else None,
        "utilisation_chart": utilisation_chart,
        "currencies": currencies,
        "daily_spend_chart": daily_spend_chart,
    }
