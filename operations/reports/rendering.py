"""A report's document: its figures drawn as one self-contained HTML page (inline CSS, SVG
charts from ``tenants.portal.charts``, the logo as a data URI), and that page as a PDF."""

from __future__ import annotations

import base64
import datetime as dt
import mimetypes
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from tenants.portal.charts import BarSeries, Series, bar_chart, line_chart

SEVERITY_COLOURS = {"SEV1": "#a32020", "SEV2": "#b34d00", "SEV3": "#8a5a00", "SEV4": "#1f5f8b"}
CHART_WIDTH = 680
CHART_HEIGHT = 260


def _moment(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


@cache
def _logo_data_uri(path: str) -> str:
    """The MSP's logo inlined, so the document needs nothing beside it ("" if unreadable)."""
    file = Path(path)
    if not file.is_absolute():
        file = Path(settings.BASE_DIR) / file
    try:
        data = file.read_bytes()
    except OSError:
        return ""
    kind = mimetypes.guess_type(file.name)[0] or "image/png"
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} d"


def _percent(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio * 100:.1f} %"


def _money(amount, currency: str) -> str:
    if amount is None:
        return "—"
    return f"{float(amount):,.2f} {currency}".strip()


def _savings(block: dict) -> str:
    parts = [_money(amount, currency) for currency, amount in block["monthly_saving"].items()]
    return " + ".join(parts) if parts else "0"


def charts_for(figures: dict, zone: ZoneInfo) -> dict:
    """The document's charts, built from its figures."""
    sla = figures["sla"]["by_severity"]
    severities = [row["severity"] for row in sla]
    trend = figures["incident_trend"]
    charts = {
        "severity": bar_chart(
            title="Incidents by severity",
            categories=severities,
            series=[
                BarSeries(
                    "Incidents",
                    [row["incidents"] for row in sla],
                    colours=[SEVERITY_COLOURS.get(s, "#1f5f8b") for s in severities],
                )
            ],
            y_title="Incidents",
            x_title="Severity",
            width=CHART_WIDTH,
            height=CHART_HEIGHT,
        ),
        "trend": bar_chart(
            title="Incidents per period",
            categories=[row["label"] for row in trend],
            series=[BarSeries("Incidents", [row["incidents"] for row in trend])],
            y_title="Incidents",
            x_title="Period",
            width=CHART_WIDTH,
            height=CHART_HEIGHT,
        ),
        "compliance": line_chart(
            title="Compliance score per framework",
            series=[
                Series(
                    framework["title"],
                    [(_moment(p["at"]), p["score"]) for p in framework["scores"]],
                )
                for framework in figures["compliance"]["frameworks"]
            ],
            y_title="Score",
            unit="%",
            tz=zone,
            y_range=(0, 100),
            width=CHART_WIDTH,
            height=CHART_HEIGHT,
        ),
        "gpu": line_chart(
            title="GPU utilisation per day",
            series=[
                Series(
                    "Mean utilisation",
                    [(_moment(p["day"]), p["utilisation"]) for p in figures["gpu"]["daily"]],
                )
            ],
            y_title="Utilisation",
            unit="%",
            tz=zone,
            y_range=(0, 100),
            width=CHART_WIDTH,
            height=CHART_HEIGHT,
        ),
    }
    spend = figures["spend"]
    running, cumulative = 0.0, []
    for point in spend["daily"]:
        running += point["amount"]
        cumulative.append((_moment(point["day"]), round(running, 2)))
    charts["spend"] = line_chart(
        title="Spend so far in the period",
        series=[Series("Cumulative spend", cumulative)],
        y_title="Spend",
        unit=spend["currency"],
        tz=zone,
        target=spend["budget"],
        target_label="Budget",
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
    )
    return charts


def document_context(*, report, figures: dict) -> dict:
    zone = ZoneInfo(figures["period"]["timezone"])
    start = _moment(figures["period"]["start"])
    end = _moment(figures["period"]["end"])
    sla = figures["sla"]
    overall = sla["overall"]
    spend = figures["spend"]
    readiness = figures["readiness"]
    frameworks = figures["compliance"]["frameworks"]
    compliance_latest = [f["latest"] for f in frameworks if f["latest"] is not None]
    headline = {
        "incidents": overall["incidents"],
        "resolve_sla": _percent(overall["resolve_sla_attainment"]),
        "ack_sla": _percent(overall["ack_sla_attainment"]),
        "mtta": _duration(overall["mtta_seconds"]),
        "mttr": _duration(overall["mttr_seconds"]),
        "compliance": f"{min(compliance_latest):.1f} %" if compliance_latest else "—",
        "readiness": f"Level {readiness['level']}" if readiness["level"] else "—",
        "spend": _money(spend["total"], spend["currency"]),
        "budget": _money(spend["budget"], spend["currency"]) if spend["budget"] else "no budget",
        "budget_share": _percent(spend["budget_share"]),
        "gpu": (
            f"{figures['gpu']['mean_utilisation']:.1f} %"
            if figures["gpu"]["mean_utilisation"] is not None
            else "—"
        ),
        "realised": _savings(figures["savings"]["realised"]),
    }
    with timezone.override(zone):
        context = {
            "report": report,
            "figures": figures,
            "msp_name": settings.MSP_NAME,
            "logo": _logo_data_uri(settings.MSP_LOGO_PATH),
            "zone": str(zone),
            "start": start.astimezone(zone),
            "last_day": (end - dt.timedelta(days=1)).astimezone(zone),
            "generated_at": _moment(figures["generated_at"]).astimezone(zone),
            "headline": headline,
            "sla_rows": [
                {
                    **row,
                    "mtta": _duration(row["mtta_seconds"]),
                    "mttr": _duration(row["mttr_seconds"]),
                    "ack": _percent(row["ack_sla_attainment"]),
                    "resolve": _percent(row["resolve_sla_attainment"]),
                }
                for row in sla["by_severity"]
            ],
            "trend_rows": [
                {
                    **row,
                    "mtta": _duration(row["mtta_seconds"]),
                    "mttr": _duration(row["mttr_seconds"]),
                    "resolve": _percent(row["resolve_sla_attainment"]),
                }
                for row in figures["incident_trend"]
            ],
            "major": [
                {
                    **row,
                    "created": _moment(row["created_at"]).astimezone(zone),
                    "resolved": (
                        _moment(row["resolved_at"]).astimezone(zone) if row["resolved_at"] else None
                    ),
                }
                for row in figures["major_incidents"]
            ],
            "regulator_rows": [
                {**row, "deadline": _moment(row["regulator_deadline"]).astimezone(zone)}
                for row in figures["regulator"]["rows"]
            ],
            "savings": {
                name: {"count": block["count"], "amount": _savings(block)}
                for name, block in figures["savings"].items()
            },
            "recommendations": [
                {**row, "saving": _money(row["estimated_monthly_saving"], row["currency"])}
                for row in figures["open_recommendations"]
            ],
            "proposals": [line.strip() for line in report.proposals.splitlines() if line.strip()],
            "charts": charts_for(figures, zone),
        }
    return context


def render_html(*, report, figures: dict) -> str:
    """The self-contained HTML document of ``report`` drawn from ``figures``."""
    zone = ZoneInfo(figures["period"]["timezone"])
    context = document_context(report=report, figures=figures)
    with timezone.override(zone):
        return render_to_string("reports/document.html", context)
