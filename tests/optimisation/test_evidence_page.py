"""A recommendation's page draws its evidence as a chart beside a few facts, per kind, with the
raw evidence collapsed for engineers; foreign and missing recommendations are the same 404."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tenants.models import ServicePlan, TenantRole
from tests.factories import make_member
from tests.inventory.estate import make_gpu_node
from tests.optimisation.helpers import feed, this_hour
from tests.optimisation.test_api import make_recommendation
from tests.portal.svg import all_text, dots

pytestmark = pytest.mark.django_db


def detail_url(tenant, rec) -> str:
    return reverse("portal_recommendations:detail", kwargs={"slug": tenant.slug, "pk": rec.pk})


@pytest.fixture
def viewer(client, tenant_a):
    ServicePlan.objects.filter(tenant=tenant_a).update(timezone="UTC")
    client.force_login(make_member(tenant_a, TenantRole.VIEWER, username="acme-viewer"))
    return client


def page(client, tenant, rec) -> str:
    response = client.get(detail_url(tenant, rec))
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def facts(text: str) -> dict[str, str]:
    block = re.search(r'<dl class="facts evidence__facts">(.*?)</dl>', text, re.S).group(1)
    return dict(re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", block))


def svgs(text: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", text, re.S)


def table_rows(text: str) -> list[tuple[str, ...]]:
    return [
        (head, *re.findall(r'<td class="num">([^<]*)</td>', cells))
        for head, cells in re.findall(r'<tr><th scope="row">([^<]*)</th>(.*?)</tr>', text, re.S)
    ]


def test_a_cost_anomaly_draws_daily_spend_in_its_band_with_the_days_outside(viewer, tenant_a):
    history = [{"day": f"2026-11-{day:02d}", "spend": 100.0} for day in range(20, 27)]
    rec = make_recommendation(
        tenant_a,
        1,
        kind="cost_anomaly",
        subject_type="tenant",
        subject_id=None,
        subject_key="tenant",
        currency="EUR",
        evidence={
            "day": "2026-11-27",
            "spend": 180.0,
            "direction": "above",
            "median": 100.0,
            "band": [90.0, 110.0],
            "history": history,
            "days_above": 1,
            "saving_basis": "a spike of 1 day(s): no monthly saving is projected",
            "top_contributors": [
                {"resource": "compute:gpu-01", "spend": 150.0, "usual": 70.0, "change": 80.0}
            ],
        },
    )
    text = page(viewer, tenant_a, rec)
    assert "<pre" in text  # the raw evidence, collapsed
    assert re.search(r"<details[^>]*>\s*<summary[^>]*>Details for engineers", text)
    chart = svgs(text)[0]
    assert "Usual band: high" in all_text(chart)
    assert dots(chart) >= 1
    rows = {row[0]: row[1:] for row in table_rows(text)}
    # Time, spend, outside the band, median, band low, band high
    assert rows["27 Nov 2026 00:00 UTC"] == ("180 EUR", "180 EUR", "100 EUR", "90 EUR", "110 EUR")
    assert rows["21 Nov 2026 00:00 UTC"][:2] == ("100 EUR", "—")
    shown = facts(text)
    assert shown["Spend that day"] == "180 EUR"
    assert shown["Band"] == "90 EUR to 110 EUR"
    assert shown["compute:gpu-01"] == "150 EUR (usually 70 EUR)"


def test_a_capacity_forecast_draws_daily_peaks_their_trend_and_saturation(viewer, tenant_a):
    daily = [
        {"day": "2026-12-01", "peak": 70.0, "mean": 50.0, "hours": 24},
        {"day": "2026-12-02", "peak": 72.0, "mean": 51.0, "hours": 24},
        {"day": "2026-12-03", "peak": 74.0, "mean": 52.0, "hours": 24},
    ]
    rec = make_recommendation(
        tenant_a,
        2,
        kind="capacity_forecast",
        evidence={
            "latest_day": "2026-12-03",
            "latest_peak": 74.0,
            "basis": "trend",
            "days_until_saturation": 8,
            "as_of_day": "2026-12-04",
            "trend": {"slope_per_day": 2.0, "level_today": 76.0, "r2": 1.0},
            "daily": daily,
            "thresholds": {"saturation": 90.0},
        },
    )
    text = page(viewer, tenant_a, rec)
    rows = {row[0]: row[1:] for row in table_rows(text)}
    # Peak, mean, trend: the trend runs from the first day to the day it reaches saturation.
    assert rows["1 Dec 2026 00:00 UTC"] == ("70 %", "50 %", "70 %")
    assert rows["12 Dec 2026 00:00 UTC"] == ("—", "—", "92 %")
    assert "saturation 90 %" in text
    assert facts(text)["Days until saturation"] == "8"
    assert facts(text)["Trend"] == "+2.00 points a day (r² 1.00)"


def test_a_right_sizing_draws_mean_and_peak_bars_and_the_gpus_needed(viewer, tenant_a):
    rec = make_recommendation(
        tenant_a,
        3,
        kind="right_size",
        evidence={
            "utilisation_mean": 12.5,
            "utilisation_peak_hour": 30.0,
            "memory_used_mean_pct": 10.0,
            "memory_used_peak_pct": 20.0,
            "gpu_count": 8,
            "gpus_needed": 4,
            "fraction_saved": 0.5,
            "hourly_cost": "20.00",
            "thresholds": {"right_size_target": 60.0},
        },
    )
    text = page(viewer, tenant_a, rec)
    rows = {row[0]: row[1:] for row in table_rows(text)}
    assert rows["GPU utilisation"] == ("12.5 %", "30 %")
    assert rows["GPU memory used"] == ("10 %", "20 %")
    assert rows["On the node"] == ("8",)
    assert rows["Needed"] == ("4",)
    assert facts(text)["GPUs"] == "4 of 8 carry the peak"
    assert facts(text)["Share released"] == "50 %"


def test_an_idle_gpu_draws_its_utilisation_against_the_idle_threshold(viewer, tenant_a):
    node = make_gpu_node(tenant_a, hostname="acme-gpu-idle")
    end = this_hour()
    start = end - dt.timedelta(hours=6)
    feed(tenant_a, "compute:acme-gpu-idle", "gpu_utilization", start, end, 2.5)
    rec = make_recommendation(
        tenant_a,
        4,
        subject_id=node.pk,
        subject_key=f"compute:{node.pk}",
        estimated_monthly_saving=Decimal("500"),
        evidence={
            "window": {"from": start.isoformat(), "to": end.isoformat(), "hours": 6},
            "hours_with_data": 6,
            "utilisation_mean": 2.5,
            "utilisation_peak_hour": 2.5,
            "gpu_count": 4,
            "hourly_cost": "7.32",
            "thresholds": {"idle_utilisation": 5.0, "idle_peak": 15.0},
        },
    )
    with CaptureQueriesContext(connection) as queries:
        text = page(viewer, tenant_a, rec)
    values = [row[1] for row in table_rows(text) if row[0].endswith("UTC")]
    assert values == ["2.5 %"] * 6
    assert "idle threshold (mean) 5 %" in text
    assert facts(text)["Hours with data"] == "6 of 6"
    assert len(queries) < 30


def test_foreign_and_missing_recommendations_are_the_same_404(viewer, tenant_a, tenant_b):
    foreign = make_recommendation(tenant_b, 9)
    missing = viewer.get(
        reverse("portal_recommendations:detail", kwargs={"slug": tenant_a.slug, "pk": 987654})
    )
    crossing = viewer.get(
        reverse("portal_recommendations:detail", kwargs={"slug": tenant_a.slug, "pk": foreign.pk})
    )
    elsewhere = viewer.get(detail_url(tenant_b, foreign))
    assert missing.status_code == crossing.status_code == elsewhere.status_code == 404
    scrub = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
    assert scrub.sub(b"", missing.content) == scrub.sub(b"", crossing.content)
