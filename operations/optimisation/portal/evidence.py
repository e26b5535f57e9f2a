"""A recommendation's evidence drawn as a chart with a short list of facts beside it, per kind:
an idle GPU's utilisation against the idle threshold (for one GPU of a busy node, beside the
mean of its node's other GPUs), a capacity forecast's daily peaks with
their trend and the saturation line, a cost anomaly's daily spend in its usual band with the
days outside it, a right-sizing's mean and peak against the target. Retired capacity has facts
only. The raw evidence stays available to engineers, collapsed, on the page.

At most one query (an idle GPU's hourly utilisation, from telemetry's selectors)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from operations.optimisation.detectors import least_squares
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.selectors import telemetry_gpu_utilisation_series, telemetry_hourly_means
from tenants.portal.charts import (
    BAD,
    BRAND,
    Band,
    BarSeries,
    Chart,
    Series,
    bar_chart,
    format_number,
    line_chart,
)


@dataclass(frozen=True)
class Evidence:
    charts: list[Chart] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)


def _moment(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _day(text: str, zone) -> dt.datetime:
    """A calendar day of the evidence at local midnight, so its label is that day anywhere."""
    return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(0), tzinfo=zone)


def _pct(value) -> str:
    return format_number(None if value is None else float(value), "%")


def _money(amount, currency: str) -> str:
    return format_number(None if amount in (None, "") else float(Decimal(str(amount))), currency)


def idle_gpu(rec, *, tenant) -> Evidence:
    ev = rec.evidence or {}
    window = ev.get("window") or {}
    start, end = _moment(window.get("from")), _moment(window.get("to"))
    thresholds = ev.get("thresholds") or {}
    chart = None
    if start and end and rec.subject_id:
        points = telemetry_gpu_utilisation_series(
            tenant=tenant, compute_id=rec.subject_id, start=start, end=end
        )
        # An idle node's line would hug the floor of a 0–100 axis: scale to its threshold.
        top = max([v for _t, v in points] + [thresholds.get("idle_peak") or 0, 5.0])
        top = min(100, 5 * math.ceil(top * 1.3 / 5))
        chart = line_chart(
            title=f"GPU utilisation of {rec.subject_label}, hourly means over the scan's window",
            series=[Series("GPU utilisation", points)],
            y_title="GPU utilisation",
            unit="%",
            y_range=(0, top),
            target=thresholds.get("idle_utilisation"),
            target_label="Idle threshold (mean)",
            gap=dt.timedelta(hours=2),
            height=280,
        )
    facts = [
        ("Mean utilisation", _pct(ev.get("utilisation_mean"))),
        ("Busiest hour", _pct(ev.get("utilisation_peak_hour"))),
        (
            "Idle when",
            f"mean under {_pct(thresholds.get('idle_utilisation'))} and no hour over "
            f"{_pct(thresholds.get('idle_peak'))}",
        ),
        ("Hours with data", f"{ev.get('hours_with_data', '—')} of {window.get('hours', '—')}"),
        ("GPUs", str(ev.get("gpu_count", "—"))),
        ("Hourly cost", _money(ev.get("hourly_cost"), rec.currency)),
        ("Saving", ev.get("saving_basis", "—")),
    ]
    return Evidence([chart] if chart else [], facts)


def idle_gpu_on_busy_node(rec, *, tenant) -> Evidence:
    ev = rec.evidence or {}
    window = ev.get("window") or {}
    start, end = _moment(window.get("from")), _moment(window.get("to"))
    thresholds = ev.get("thresholds") or {}
    others = [item["id"] for item in ev.get("other_gpus") or [] if isinstance(item.get("id"), int)]
    chart = None
    if start and end and rec.subject_id:
        hourly = telemetry_hourly_means(
            tenant=tenant,
            resource_kind=ResourceKind.GPU,
            resource_ids=[rec.subject_id, *others],
            metric=METRICS_BY_NAME["gpu_utilization"],
            start=start,
            end=end,
        )
        by_hour: dict[dt.datetime, list[float]] = {}
        for gpu_id in others:
            for hour, mean, _count in hourly.get(gpu_id, []):
                by_hour.setdefault(hour, []).append(mean)
        chart = line_chart(
            title=(
                f"GPU utilisation of {rec.subject_label} and of its node's other GPUs, hourly "
                "means over the scan's window"
            ),
            series=[
                Series(rec.subject_label, [(h, m) for h, m, _c in hourly.get(rec.subject_id, [])]),
                Series(
                    f"Other {len(others)} GPU{'s' if len(others) != 1 else ''} (mean)",
                    [(hour, sum(v) / len(v)) for hour, v in sorted(by_hour.items())],
                    dashed=True,
                ),
            ],
            y_title="GPU utilisation",
            unit="%",
            y_range=(0, 100),
            target=thresholds.get("gpu_idle_utilisation"),
            target_label="Idle threshold (mean)",
            gap=dt.timedelta(hours=2),
            height=280,
        )
    gpu = ev.get("gpu") or {}
    facts = [
        ("Mean utilisation", _pct(ev.get("utilisation_mean"))),
        ("Busiest hour", _pct(ev.get("utilisation_peak_hour"))),
        ("Other GPUs of the node", f"{_pct(ev.get('other_gpus_mean'))} mean"),
        (
            "Idle when",
            f"mean under {_pct(thresholds.get('gpu_idle_utilisation'))} and no hour over "
            f"{_pct(thresholds.get('gpu_idle_peak'))}, while the others average at least "
            f"{_pct(thresholds.get('busy_node_utilisation'))}",
        ),
        ("GPU UUID", gpu.get("uuid") or "—"),
        ("Hours with data", f"{ev.get('hours_with_data', '—')} of {window.get('hours', '—')}"),
        ("Hourly cost of the node", _money(ev.get("hourly_cost"), rec.currency)),
        ("Saving", ev.get("saving_basis", "—")),
    ]
    return Evidence([chart] if chart else [], facts)


def capacity_forecast(rec, *, tenant) -> Evidence:
    ev = rec.evidence or {}
    zone = timezone.get_current_timezone()
    daily = ev.get("daily") or []
    saturation = (ev.get("thresholds") or {}).get("saturation")
    trend = ev.get("trend")
    series = [Series("Daily peak", [(_day(p["day"], zone), p["peak"]) for p in daily])]
    series.append(Series("Daily mean", [(_day(p["day"], zone), p["mean"]) for p in daily]))
    as_of = ev.get("as_of_day") or timezone.localdate(rec.last_seen, dt.UTC).isoformat()
    days = ev.get("days_until_saturation")
    if trend is None and len(daily) >= 2:
        # Already saturated: the scan fitted no trend, so fit the drawn peaks the same way.
        today = dt.date.fromisoformat(as_of)
        slope, intercept, r2 = least_squares(
            [((dt.date.fromisoformat(p["day"]) - today).days, p["peak"]) for p in daily]
        )
        trend = {"slope_per_day": slope, "level_today": intercept, "r2": r2}
    if trend and daily:
        today = dt.date.fromisoformat(as_of)
        first = dt.date.fromisoformat(daily[0]["day"])
        last = today + dt.timedelta(days=max(days or 0, 0))

        def level(day):
            return round(trend["level_today"] + trend["slope_per_day"] * (day - today).days, 2)

        series.append(
            Series(
                "Trend of the peaks",
                [
                    (_day(first.isoformat(), zone), level(first)),
                    (_day(last.isoformat(), zone), level(last)),
                ],
                dashed=True,
            )
        )
    chart = line_chart(
        title=f"Daily GPU utilisation of {rec.subject_label}",
        series=series,
        y_title="GPU utilisation",
        unit="%",
        y_range=(0, 100),
        target=saturation,
        target_label="Saturation",
        height=280,
    )
    facts = [
        ("Latest peak", f"{_pct(ev.get('latest_peak'))} on {ev.get('latest_day', '—')}"),
        ("Saturation", _pct(saturation)),
        ("Days until saturation", "now" if days == 0 else str(days if days is not None else "—")),
        (
            "Trend",
            f"{trend['slope_per_day']:+.2f} points a day (r² {trend['r2']:.2f})" if trend else "—",
        ),
        ("Days drawn", str(len(daily))),
    ]
    return Evidence([chart] if chart else [], facts)


def cost_anomaly(rec, *, tenant) -> Evidence:
    ev = rec.evidence or {}
    zone = timezone.get_current_timezone()
    band = ev.get("band") or [None, None]
    history = [(p["day"], p["spend"]) for p in ev.get("history") or []]
    if ev.get("day") is not None and ev.get("spend") is not None:
        history.append((ev["day"], ev["spend"]))
    points = [(_day(day, zone), spend) for day, spend in sorted(history)]
    low, high = band
    outside = [
        (moment, spend)
        for moment, spend in points
        if low is not None and high is not None and not (low <= spend <= high)
    ]
    chart = line_chart(
        title="Spend per day against its usual band",
        series=[
            Series("Spend", points),
            Series("Outside the band", outside, dots_only=True),
            Series(
                "Median", [(m, ev.get("median")) for m, _s in points[:1] + points[-1:]], dashed=True
            ),
        ],
        y_title="Spend",
        unit=rec.currency,
        band=Band("Usual band", [(m, low, high) for m, _s in points])
        if low is not None and high is not None
        else None,
        height=280,
    )
    facts = [
        ("Day", str(ev.get("day", "—"))),
        ("Spend that day", _money(ev.get("spend"), rec.currency)),
        ("Usual (median)", _money(ev.get("median"), rec.currency)),
        ("Band", f"{_money(low, rec.currency)} to {_money(high, rec.currency)}"),
        ("Days in a row outside", str(ev.get("days_above", "—"))),
        ("Saving", ev.get("saving_basis", "—")),
    ]
    for item in (ev.get("top_contributors") or [])[:3]:
        facts.append(
            (
                item.get("resource", "—"),
                f"{_money(item.get('spend'), rec.currency)} (usually "
                f"{_money(item.get('usual'), rec.currency)})",
            )
        )
    return Evidence([chart] if chart else [], facts)


def right_size(rec, *, tenant) -> Evidence:
    ev = rec.evidence or {}
    thresholds = ev.get("thresholds") or {}
    chart = bar_chart(
        title=f"{rec.subject_label}: mean and busiest hour over the window",
        categories=["GPU utilisation", "GPU memory used"],
        series=[
            BarSeries("Mean", [ev.get("utilisation_mean"), ev.get("memory_used_mean_pct")]),
            BarSeries(
                "Busiest hour", [ev.get("utilisation_peak_hour"), ev.get("memory_used_peak_pct")]
            ),
        ],
        y_title="Share of the node",
        x_title="Measure",
        unit="%",
        height=260,
    )
    gpus = ev.get("gpu_count")
    needed = ev.get("gpus_needed")
    carried = f"{needed if needed is not None else '—'} of {gpus if gpus is not None else '—'}"
    gpu_chart = bar_chart(
        title="GPUs: on the node and needed for its peak",
        categories=["On the node", "Needed"],
        series=[BarSeries("GPUs", [gpus, needed], colours=[BAD, BRAND])],
        y_title="GPUs",
        x_title="GPUs",
        height=220,
    )
    facts = [
        (
            "GPUs",
            f"{carried} carry the peak",
        ),
        ("Peak aimed at", _pct(thresholds.get("right_size_target"))),
        (
            "Share released",
            _pct(round(100 * ev["fraction_saved"], 1)) if "fraction_saved" in ev else "—",
        ),
        ("Hourly cost", _money(ev.get("hourly_cost"), rec.currency)),
        ("Saving", ev.get("saving_basis", "—")),
    ]
    return Evidence([chart, gpu_chart] if gpus else [chart], facts)


def retired_capacity(rec, *, tenant) -> Evidence:
    ev = rec.evidence or {}
    facts = []
    for item in ev.get("deployments") or []:
        facts.append(
            (
                f"Deployment {item.get('deployment')}",
                f"on {item.get('compute') or 'no compute'}"
                + (
                    f", {_money(item.get('hourly_cost'), rec.currency)} an hour"
                    if item.get("hourly_cost")
                    else ""
                ),
            )
        )
    if "spend_in_window" in ev:
        facts.append(("Spend in the window", _money(ev.get("spend_in_window"), rec.currency)))
        facts.append(("Deployments hosted", str(ev.get("deployments_hosted", 0))))
    facts.append(("Saving", ev.get("saving_basis", "—")))
    return Evidence([], facts)


DRAWERS = {
    "idle_gpu": idle_gpu,
    "idle_gpu_busy_node": idle_gpu_on_busy_node,
    "capacity_forecast": capacity_forecast,
    "cost_anomaly": cost_anomaly,
    "right_size": right_size,
    "retired_capacity": retired_capacity,
}


def recommendation_evidence(rec, *, tenant) -> Evidence:
    drawer = DRAWERS.get(rec.kind)
    return drawer(rec, tenant=tenant) if drawer else Evidence()
