"""The one chart module: every kind renders well-formed, script-free SVG with its axis titles and
units, a text equivalent holding the values, a placeholder for no data, and hostile labels kept
as text."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from django.template import Context, Template

from tenants.portal import charts
from tests.portal.svg import SVG, all_text, dots, drawn_lines, parse_svg

T0 = dt.datetime(2026, 12, 5, 22, 0, tzinfo=dt.UTC)
HOSTILE = '<script>alert("x")</script>'


def hourly(values, start=T0):
    return [(start + dt.timedelta(hours=i), v) for i, v in enumerate(values)]


def utilisation_chart(**options):
    return charts.line_chart(
        title="GPU utilisation",
        series=[
            charts.Series("gpu-01", hourly([10, 20, 30, 40])),
            charts.Series("gpu-02", hourly([50, 60, 70, 80])),
        ],
        y_title="GPU utilisation",
        unit="%",
        tz="Europe/Berlin",
        **options,
    )


def severity_chart(categories=("SEV1", "SEV2", "SEV3", "SEV4"), values=(1, 4, 9, 3), **options):
    return charts.bar_chart(
        title="Incidents by severity",
        categories=list(categories),
        series=[charts.BarSeries("Incidents", list(values))],
        y_title="Incidents",
        x_title="Severity",
        unit="incidents",
        **options,
    )


PILLARS = ["Strategy", "Infrastructure", "Data", "Governance", "Talent", "Culture", "AI Operations"]


def readiness_radar(scores=(62, 71, 48, 55, 40, 66, 58), peers=True):
    band = charts.PeerBand(
        minimum=[30, 40, 25, 35, 20, 30, 28],
        median=[55, 60, 45, 50, 38, 52, 50],
        maximum=[80, 85, 70, 75, 62, 78, 74],
    )
    return charts.radar_chart(
        title="Readiness by pillar",
        axes=PILLARS,
        scores=list(scores),
        name="Acme",
        peers=band if peers else None,
    )


def every_kind():
    return {
        "line": utilisation_chart(target=75),
        "bar": severity_chart(),
        "radar": readiness_radar(),
        "sparkline": charts.sparkline([10, 40, 90], label="GPU utilisation, last 72 h"),
    }


@pytest.mark.parametrize("kind", ["line", "bar", "radar", "sparkline"])
def test_each_kind_is_well_formed_accessible_svg_without_scripts_or_fetches(kind):
    chart = every_kind()[kind]
    root = parse_svg(chart.svg)
    assert chart.kind == kind
    assert root.get("role") == "img"
    assert root.get("aria-label") == chart.title
    children = list(root)
    assert children[0].tag == f"{SVG}title"
    assert children[0].text == chart.title
    assert children[1].tag == f"{SVG}desc"
    assert children[1].text == chart.summary
    # Exactly one <title> child: pygal's stock "Pygal" title is gone.
    assert [c.text for c in root.findall(f"{SVG}title")] == [chart.title]
    assert not [e for e in root.iter() if e.tag in (f"{SVG}script", f"{SVG}foreignObject")]
    # Nothing to fetch: no links, no external stylesheet or image.
    for element in root.iter():
        for name, value in element.attrib.items():
            assert "href" not in name
            assert "http" not in value
            assert "url(" not in value
    styles = " ".join(e.text or "" for e in root.iter(f"{SVG}style"))
    assert "@import" not in styles
    assert "url(" not in styles
    assert "<script" not in str(chart.svg)


def test_the_line_chart_has_axis_titles_with_units_and_times_in_the_zone():
    chart = utilisation_chart()
    written = all_text(chart.svg)
    assert "GPU utilisation (%)" in written
    assert "Time (Europe/Berlin)" in written
    # 22:00 UTC is 23:00 in Berlin in December: labels and table are in local time.
    assert "23:00" in written
    assert "22:00" not in written
    assert chart.table.rows[0][0] == "5 Dec 2026 23:00 CET"
    new_york = charts.line_chart(
        title="t", series=[charts.Series("a", hourly([1, 2]))], y_title="v", tz="America/New_York"
    )
    assert new_york.table.rows[0][0] == "5 Dec 2026 17:00 EST"
    assert "Time (America/New_York)" in all_text(new_york.svg)


def test_the_line_chart_text_equivalent_holds_every_value_and_the_target():
    chart = utilisation_chart(target=75)
    assert chart.table.columns == ("Time", "gpu-01 (%)", "gpu-02 (%)")
    assert [row[1:] for row in chart.table.rows] == [
        ("10 %", "50 %"),
        ("20 %", "60 %"),
        ("30 %", "70 %"),
        ("40 %", "80 %"),
    ]
    assert "gpu-02: latest 80 %, lowest 50 %, highest 80 %" in chart.summary
    assert "target 75 %" in chart.summary
    assert "Target: 75 %" in all_text(chart.svg)  # the dashed line's legend
    text = str(chart.text)
    assert "<table" in text
    assert "80 %" in text
    assert "6 Dec 2026 01:00 CET" in text
    # Two series plus the flat target line.
    lines = drawn_lines(chart.svg)
    assert len(lines) == 3
    assert len({y for _x, y in lines[-1]}) == 1


def test_none_nan_and_infinite_values_are_gaps_not_zeros():
    values = [10, None, 30, math.nan, 50, 60, math.inf, 80]
    chart = charts.line_chart(
        title="Latency", series=[charts.Series("api", hourly(values))], y_title="Latency", unit="ms"
    )
    # Only 50 → 60 is a run of two; the lone points are dots, the missing ones nothing.
    assert len(drawn_lines(chart.svg)) == 1
    assert dots(chart.svg) == 5
    assert [row[1] for row in chart.table.rows] == [
        "10 ms",
        "no data",
        "30 ms",
        "no data",
        "50 ms",
        "60 ms",
        "no data",
        "80 ms",
    ]


def test_points_further_apart_than_the_gap_break_the_line():
    points = hourly([1, 2, 3]) + hourly([4, 5], start=T0 + dt.timedelta(hours=10))
    series = [charts.Series("a", points)]
    joined = charts.line_chart(title="t", series=series, y_title="v")
    broken = charts.line_chart(title="t", series=series, y_title="v", gap=dt.timedelta(hours=2))
    assert len(drawn_lines(joined.svg)) == 1
    assert len(drawn_lines(broken.svg)) == 2


def test_one_point_is_drawn_as_a_dot_and_huge_numbers_stay_readable():
    chart = charts.line_chart(
        title="Spend",
        series=[charts.Series("cloud", [(T0, 3.2e12)])],
        y_title="Spend",
        unit="EUR",
        tz="UTC",
    )
    assert dots(chart.svg) == 1
    assert chart.table.rows == (("5 Dec 2026 22:00 UTC", "3,200,000,000,000 EUR"),)
    written = all_text(chart.svg)
    assert "Spend (EUR)" in written
    assert " T" in written  # axis labels abbreviated (1 T, 2 T, …), not 13 digits
    assert "000,000,000" not in written


def test_the_bar_chart_has_axis_titles_units_and_its_values_as_text():
    chart = severity_chart()
    written = all_text(chart.svg)
    assert "Incidents (incidents)" in written
    assert "Severity" in written
    assert chart.table.columns == ("Severity", "Incidents (incidents)")
    assert chart.table.rows == (
        ("SEV1", "1 incidents"),
        ("SEV2", "4 incidents"),
        ("SEV3", "9 incidents"),
        ("SEV4", "3 incidents"),
    )
    assert "SEV3 9 incidents" in chart.summary
    spend = charts.bar_chart(
        title="Spend against budget",
        categories=["Nov", "Dec"],
        series=[
            charts.BarSeries("Spend", [150250.5, 98000]),
            charts.BarSeries("Budget", [140000, 140000]),
        ],
        y_title="Spend",
        x_title="Month",
        unit="EUR",
    )
    assert spend.table.rows == (
        ("Nov", "150,250.5 EUR", "140,000 EUR"),
        ("Dec", "98,000 EUR", "140,000 EUR"),
    )
    assert "Nov: Spend 150,250.5 EUR, Budget 140,000 EUR" in spend.summary
    assert {"Spend", "Budget"} <= set(all_text(spend.svg).split())


def test_the_radar_has_its_scale_the_peer_band_and_the_values_as_text():
    chart = readiness_radar()
    written = all_text(chart.svg)
    assert "Score 0–100" in written
    for pillar in PILLARS:
        assert pillar in written
    assert chart.table.columns == (
        "Axis",
        "Acme",
        "Peers minimum",
        "Peers median",
        "Peers maximum",
    )
    assert chart.table.rows[0] == ("Strategy", "62", "30", "55", "80")
    assert "Data 48" in chart.summary
    assert "range of peers" in chart.summary
    alone = readiness_radar(peers=False)
    assert alone.table.columns == ("Axis", "Acme")
    assert "Peers" not in all_text(alone.svg)


@pytest.mark.parametrize(
    "chart",
    [
        charts.line_chart(title="Latency", series=[], y_title="Latency", unit="ms"),
        charts.line_chart(
            title="Latency",
            series=[charts.Series("api", hourly([None, math.nan]))],
            y_title="Latency",
            unit="ms",
        ),
        severity_chart(categories=(), values=()),
        severity_chart(values=(None, None, None, None)),
        charts.radar_chart(title="Readiness", axes=PILLARS, scores=[None] * 7),
        charts.sparkline([], label="GPU utilisation"),
    ],
    ids=["line-empty", "line-all-missing", "bar-empty", "bar-all-missing", "radar", "sparkline"],
)
def test_no_data_draws_a_placeholder_not_an_empty_frame(chart):
    root = parse_svg(chart.svg)
    assert all_text(chart.svg) == charts.NO_DATA
    assert "chart-empty" in root.get("class")
    assert not drawn_lines(chart.svg)
    assert not root.findall(f".//{SVG}g")
    assert chart.is_empty
    assert "no data" in chart.summary
    assert "<table" not in str(chart.text)


def test_hostile_labels_stay_text_in_the_svg_the_text_and_the_template():
    chart = charts.bar_chart(
        title=f"Title {HOSTILE}",
        categories=[HOSTILE, "ünï 😀 & <b>bold</b>"],
        series=[charts.BarSeries(f"<img src=x onerror=alert(1)> {HOSTILE}", [1, 2])],
        y_title=HOSTILE,
        x_title="X & Y",
        unit="<u>",
    )
    root = parse_svg(chart.svg)
    tags = {element.tag.rsplit("}", 1)[-1] for element in root.iter()}
    assert not tags & {"script", "img", "b", "u"}
    written = all_text(chart.svg)
    assert HOSTILE in written
    assert "ünï 😀 & <b>bold</b>" in written
    assert root.get("aria-label") == f"Title {HOSTILE}"
    for markup in (str(chart.svg), str(chart.text)):
        assert "<script" not in markup
        assert "<img" not in markup
        assert "<b>" not in markup
    line = charts.line_chart(
        title=HOSTILE, series=[charts.Series(HOSTILE, hourly([1, 2]))], y_title=HOSTILE
    )
    radar = charts.radar_chart(title=HOSTILE, axes=[HOSTILE, "b", "c"], scores=[1, 2, 3])
    spark = charts.sparkline([1, 2], label=HOSTILE, labels=[HOSTILE, "b"])
    for other in (line, radar, spark):
        parse_svg(other.svg)
        for markup in (str(other.svg), str(other.text)):
            assert "<script" not in markup
    page = Template("{% load charts %}{% chart c %}{% chart s %}").render(
        Context({"c": chart, "s": spark})
    )
    assert "<script" not in page
    assert "<img" not in page
    assert "&lt;script&gt;" in page


def test_the_chart_tag_draws_a_figure_with_the_text_equivalent_beside_it():
    chart = severity_chart()
    page = Template('{% load charts %}{% chart c caption="Open incidents" %}').render(
        Context({"c": chart})
    )
    assert '<figure class="chart chart--bar">' in page
    assert '<figcaption class="chart__title">Open incidents</figcaption>' in page
    assert page.index("<svg") < page.index("<details") < page.index("<table")
    assert '<td class="num">9 incidents</td>' in page
    spark = charts.sparkline([1, 2], label="Trend")
    inline = Template("{% load charts %}{% chart s %}").render(Context({"s": spark}))
    assert inline.startswith('<span class="chart chart--sparkline"><svg')
    assert '<span class="visually-hidden">' in inline
    assert "<figure" not in inline


def test_the_sparkline_clamps_to_its_range_and_places_values_by_position():
    chart = charts.sparkline(
        [-20, 50, 140], label="Utilisation", positions=[0, 1, 4], position_range=(0, 4)
    )
    ((low, middle, high),) = drawn_lines(chart.svg)
    assert low[1] > middle[1] > high[1]
    assert middle[1] == pytest.approx((low[1] + high[1]) / 2)  # -20 drawn at 0, 140 at 100
    assert (middle[0] - low[0]) * 3 == pytest.approx(high[0] - middle[0])
    # The text keeps the real values, not the clamped ones.
    assert [row[1] for row in chart.table.rows] == ["-20 %", "50 %", "140 %"]
    root = parse_svg(chart.svg)
    assert (root.get("width"), root.get("height")) == ("120", "28")
    assert "sparkline" in root.get("class")


def test_the_line_chart_shades_a_band_marks_points_and_dashes_a_trend():
    days = [T0 + dt.timedelta(days=i) for i in range(6)]
    chart = charts.line_chart(
        title="Daily spend",
        series=[
            charts.Series("Spend", list(zip(days, [100, 102, 98, 160, 101, 99], strict=True))),
            charts.Series("Anomalous days", [(days[3], 160)], dots_only=True),
            charts.Series("Trend", [(days[0], 95), (days[-1], 105)], dashed=True),
        ],
        y_title="Spend",
        unit="USD",
        tz="UTC",
        band=charts.Band("Usual range", [(d, 90, 110) for d in days]),
    )
    root = parse_svg(chart.svg)
    # The band's two edges come first: the high one filled with the tint, the low one in white.
    filled = [
        shape.get("style", "")
        for group in root.iter(f"{SVG}g")
        if {"serie-0", "serie-1"} & set(group.get("class", "").split())
        for shape in group
        if shape.tag == f"{SVG}path"
    ]
    assert any(charts.BRAND_TINT in style for style in filled)
    assert any("#ffffff" in style for style in filled)
    assert "Usual range: high" in all_text(chart.svg)
    # The trend is dashed; the marked day is a dot without a line of its own.
    assert "dasharray" in str(chart.svg)
    assert chart.table.columns[-2:] == ("Usual range: low (USD)", "Usual range: high (USD)")
    assert chart.table.rows[3] == (
        "8 Dec 2026 22:00 UTC",
        "160 USD",
        "160 USD",
        "—",
        "90 USD",
        "110 USD",
    )
    assert "shaded: usual range, 90 USD to 110 USD" in chart.summary


def test_small_whole_counts_get_whole_ticks_on_the_value_axis():
    written = all_text(severity_chart(values=(0, 1, 0, 0)).svg).split()
    fractions = [word for word in written if "." in word and word.replace(".", "", 1).isdigit()]
    assert fractions == []  # no "0.2 incidents" on the axis
    assert "1" in written
