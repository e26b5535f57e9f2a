"""The incidents panel of the client overview: open incidents by severity, and MTTA, MTTR and
SLA attainment over 30 and 90 days against the period before, with the weekly attainment drawn.
Six queries whatever the number of incidents."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from operations.incidents.selectors import (
    incident_metrics_overall,
    incident_metrics_weekly,
    incident_open_by_severity,
)
from tenants.durations import duration_label
from tenants.portal.charts import BAD, BRAND, INK_SOFT, WARN, BarSeries, Series, bar_chart
from tenants.portal.charts import line_chart as draw_line_chart

WINDOWS = (30, 90)
SEVERITY_COLOURS = {"SEV1": BAD, "SEV2": WARN, "SEV3": BRAND, "SEV4": INK_SOFT}


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    previous: str
    direction: str  # "up", "down" or "steady" (or "" when either period has no figure)
    better: bool | None  # whether the change is an improvement (None: no change to judge)


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return "under 1 min"
    return duration_label(round(seconds / 60))


def percent_text(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio * 100:.1f} %".replace(".0 %", " %")


def _figure(label, now_value, before_value, text, *, lower_is_better: bool) -> Figure:
    if now_value is None or before_value is None:
        direction, better = "", None
    elif now_value == before_value:
        direction, better = "steady", None
    else:
        direction = "up" if now_value > before_value else "down"
        better = (now_value < before_value) == lower_is_better
    return Figure(label, text(now_value), text(before_value), direction, better)


def window_figures(current: dict, previous: dict) -> list[Figure]:
    return [
        _figure(
            "Incidents raised",
            current["incidents"],
            previous["incidents"],
            str,
            lower_is_better=True,
        ),
        _figure(
            "Mean time to acknowledge",
            current["mtta_seconds"],
            previous["mtta_seconds"],
            duration_text,
            lower_is_better=True,
        ),
        _figure(
            "Mean time to resolve",
            current["mttr_seconds"],
            previous["mttr_seconds"],
            duration_text,
            lower_is_better=True,
        ),
        _figure(
            "Acknowledged within SLA",
            current["ack_sla_attainment"],
            previous["ack_sla_attainment"],
            percent_text,
            lower_is_better=False,
        ),
        _figure(
            "Resolved within SLA",
            current["resolve_sla_attainment"],
            previous["resolve_sla_attainment"],
            percent_text,
            lower_is_better=False,
        ),
    ]


def incidents_overview(*, tenant, now: dt.datetime) -> dict:
    open_counts = incident_open_by_severity(tenant=tenant)
    windows = []
    for days in WINDOWS:
        span = dt.timedelta(days=days)
        current = incident_metrics_overall(tenant=tenant, start=now - span, end=now)
        previous = incident_metrics_overall(tenant=tenant, start=now - 2 * span, end=now - span)
        windows.append({"days": days, "figures": window_figures(current, previous)})
    weekly = incident_metrics_weekly(tenant=tenant, start=now - dt.timedelta(days=90), end=now)
    severities = list(open_counts)
    open_chart = bar_chart(
        title="Open incidents by severity",
        categories=severities,
        series=[
            BarSeries(
                "Open incidents",
                [open_counts[s] for s in severities],
                colours=[SEVERITY_COLOURS[s] for s in severities],
            )
        ],
        y_title="Open incidents",
        x_title="Severity",
        height=240,
    )

    def attainment(key):
        return [
            (week, None if row[key] is None else round(row[key] * 100, 1)) for week, row in weekly
        ]

    sla_chart = draw_line_chart(
        title="SLA attainment per week, last 90 days",
        series=[
            Series("Acknowledged in time", attainment("ack_sla_attainment")),
            Series("Resolved in time", attainment("resolve_sla_attainment")),
        ],
        y_title="Attainment",
        unit="%",
        y_range=(0, 100),
        height=260,
    )
    return {
        "open_counts": open_counts,
        "open_total": sum(open_counts.values()),
        "windows": windows,
        "open_chart": open_chart,
        "sla_chart": sla_chart,
    }
