"""The savings panel of the client overview: open, accepted and realised (implemented) monthly
savings. One query whatever the number of recommendations."""

from __future__ import annotations

import datetime as dt

from operations.optimisation.models import RecommendationStatus
from operations.optimisation.selectors import recommendation_savings
from tenants.portal.charts import BRAND, OK, WARN, BarSeries, bar_chart

STAGES = (
    (RecommendationStatus.OPEN, "Open", WARN),
    (RecommendationStatus.ACCEPTED, "Accepted", BRAND),
    (RecommendationStatus.IMPLEMENTED, "Realised", OK),
)


def savings_overview(*, tenant, now: dt.datetime) -> dict:
    savings = recommendation_savings(tenant=tenant)
    currencies = sorted({currency for by_currency in savings.values() for currency in by_currency})
    rows = [
        {"status": status, "label": label, "amounts": savings[status]}
        for status, label, _colour in STAGES
    ]
    charts = [
        bar_chart(
            title=f"Monthly savings by stage ({currency})",
            categories=[label for _s, label, _c in STAGES],
            series=[
                BarSeries(
                    "Monthly saving",
                    [savings[status].get(currency) or 0 for status, _l, _c in STAGES],
                    colours=[colour for _s, _l, colour in STAGES],
                )
            ],
            y_title="Monthly saving",
            x_title="Stage",
            unit=currency,
            height=240,
        )
        for currency in currencies
    ]
    return {"rows": rows, "currencies": currencies, "charts": charts}
